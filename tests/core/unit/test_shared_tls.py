"""Every HTTP client of the process shares one TLS context: a new event loop's pool of eleven
clients used to build eleven (about half a second), and it now holds one client a connection."""

from __future__ import annotations

import pytest

from sfmodels_core import DatabricksClient

# No host may be reached (the event loop still makes its internal socket pair).
pytestmark = pytest.mark.allow_hosts([])


async def test_every_pool_shares_one_tls_context() -> None:
    from sfmodels_core._pool import shared_ssl_context

    client = DatabricksClient(host="https://db.example", api_key="t", env={})
    sync_pool = client._transport.client._transport._pool  # type: ignore[attr-defined]
    pool = await client._transport.apool()
    for index in range(3):  # clients are made on first use
        pool.client(index)  # type: ignore[attr-defined]
    contexts = {id(sync_pool._ssl_context)} | {
        id(c._transport._pool._ssl_context) for c in [*pool.clients, pool.token_client]}
    assert contexts == {id(shared_ssl_context())}
    await client.aclose()
