"""A host given without a scheme is taken as https://; against a plain-HTTP server the call
fails fast with the URL that was tried and the scheme to use, instead of after every retry."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from sfmodels_core import DatabricksClient
from sfmodels_core.errors import APIConnectionError, APITimeoutError

if TYPE_CHECKING:
    from sfmodels_emulator import Emulator

USER = [{"role": "user", "content": "hi"}]


@pytest.fixture
def plain_http_server() -> Iterator[tuple[str, list[int]]]:
    """Answers whatever arrives with a plain HTTP 400, as an http:// server does to a TLS
    handshake; counts the connections."""
    listener = socket.create_server(("127.0.0.1", 0))
    connections: list[int] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            connections.append(1)
            with conn:
                conn.recv(4096)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"127.0.0.1:{listener.getsockname()[1]}", connections
    listener.close()


def test_a_plain_http_answer_to_tls_names_the_scheme_and_is_not_retried(
        plain_http_server: tuple[str, list[int]]) -> None:
    host, connections = plain_http_server
    with DatabricksClient(host=host, api_key="t", env={}, max_retries=3) as client, \
            pytest.raises(APIConnectionError) as info:
        client.chat("ep", USER)
    assert "plain HTTP" in str(info.value)
    assert f"http://{host}" in (info.value.hint or "")
    assert len(connections) == 1  # retrying cannot help


def test_a_connect_timeout_names_the_url_and_suggests_the_scheme(emulator: Emulator) -> None:
    host = emulator.databricks_host.replace("http://", "")  # the emulator never answers TLS
    with DatabricksClient(host=host, api_key="t", env={}, max_retries=0,
                          connect_timeout=0.3) as client, \
            pytest.raises(APITimeoutError) as info:
        client.chat("ep", USER)
    assert f"https://{host}/" in str(info.value) and "scheme" in (info.value.hint or "")
