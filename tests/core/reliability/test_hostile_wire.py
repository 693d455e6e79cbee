"""The emulator's hostile mode against the core clients, over real HTTP, on every sender (sync
httpx, async httpx, async aiohttp): each answer is whole and right, or one of our typed errors,
never a shorter answer, a raw exception or a hang.

The same cases behind a mock transport, with the exact messages, are in
``tests/core/unit/test_whole_answers.py``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from sfmodels_core import DatabricksClient, SalesforceClient, defaults
from sfmodels_core.errors import (
    APIStatusError,
    APITimeoutError,
    IncompleteResponseError,
    ResponseValidationError,
    SFModelsError,
)
from sfmodels_emulator import Emulator

LLAMA = "databricks-meta-llama-3-3-70b-instruct"
COMPLETIONS = LLAMA
RESPONSES = "databricks-gpt-5"
SF_CHAT = "sfdc_ai__DefaultOpenAIGPT4OmniMini"
USER = [{"role": "user", "content": "Tell me about the sea"}]
SENDERS = ["sync", "httpx", "aiohttp"]


def dbx(emu: Emulator, sender: str, **extra: Any) -> DatabricksClient:
    extra.setdefault("max_retries", 0)
    return DatabricksClient(host=emu.databricks_host, api_key=emu.databricks_token, env={},
                            async_http="aiohttp" if sender == "aiohttp" else "httpx", **extra)


def sf(emu: Emulator, sender: str, **extra: Any) -> SalesforceClient:
    extra.setdefault("max_retries", 0)
    return SalesforceClient(domain=emu.salesforce_domain, client_id=emu.salesforce_client_id,
                            client_secret=emu.salesforce_client_secret, env={},
                            async_http="aiohttp" if sender == "aiohttp" else "httpx", **extra)


def call(client: Any, method: str, *args: Any, sender: str) -> Any:
    """``client.method(*args)`` on the sender: streams are drained into a list."""
    streaming = method.startswith("stream_")
    if sender == "sync":
        result = getattr(client, method)(*args)
        return list(result) if streaming else result

    async def run() -> Any:
        try:
            fn = getattr(client, "a" + method)
            if streaming:
                return [piece async for piece in fn(*args)]
            return await fn(*args)
        finally:
            await client.aclose()

    return asyncio.run(run())


DATABRICKS_CALLS: dict[str, tuple[str, str, Any]] = {
    "chat": ("chat", LLAMA, USER),
    "complete": ("complete", COMPLETIONS, "Once upon a time"),
    "respond": ("respond", RESPONSES, USER),
}
STREAM_CALLS: dict[str, tuple[str, str, Any]] = {
    "stream_chat": ("stream_chat", LLAMA, USER),
    "stream_complete": ("stream_complete", COMPLETIONS, "Once upon a time"),
    "stream_respond": ("stream_respond", RESPONSES, USER),
}


def text_of(result: Any) -> str:
    if isinstance(result, list):
        return "".join(piece.text for piece in result)
    return str(result.text)


def expect(emulator: Emulator, case: str, error: type[Exception], run: Callable[[], Any],
           **settings: Any) -> SFModelsError:
    emulator.configure(hostile=case, **settings)
    with pytest.raises(error) as caught:
        run()
    assert emulator.counters()["hostile"].get(case), f"{case} never fired"
    assert isinstance(caught.value, SFModelsError)
    return caught.value


# -- plain answers without a generation ------------------------------------------------------------
@pytest.mark.parametrize("sender", SENDERS)
@pytest.mark.parametrize("route", list(DATABRICKS_CALLS))
@pytest.mark.parametrize("case", ["empty_object", "empty_choices", "no_content",
                                  "content_wrong_type", "content_object"])
def test_databricks_answer_without_a_generation(emulator: Emulator, sender: str, route: str,
                                                case: str) -> None:
    method, name, arg = DATABRICKS_CALLS[route]
    expect(emulator, case, ResponseValidationError,
           lambda: call(dbx(emulator, sender), method, name, arg, sender=sender))


@pytest.mark.parametrize("sender", SENDERS)
@pytest.mark.parametrize("route", ["chat", "generate"])
@pytest.mark.parametrize("case", ["empty_object", "empty_choices", "no_content",
                                  "content_wrong_type", "content_object"])
def test_salesforce_answer_without_a_generation(emulator: Emulator, sender: str, route: str,
                                                case: str) -> None:
    arg: Any = USER if route == "chat" else "Tell me about the sea"
    expect(emulator, case, ResponseValidationError,
           lambda: call(sf(emulator, sender), route, SF_CHAT, arg, sender=sender))


# -- streams ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("sender", SENDERS)
@pytest.mark.parametrize("route", list(STREAM_CALLS))
def test_a_cut_stream_is_incomplete(emulator: Emulator, sender: str, route: str) -> None:
    method, name, arg = STREAM_CALLS[route]
    error = expect(emulator, "cut_stream", IncompleteResponseError,
                   lambda: call(dbx(emulator, sender), method, name, arg, sender=sender))
    assert isinstance(error, IncompleteResponseError) and error.partial.text


@pytest.mark.parametrize("sender", SENDERS)
@pytest.mark.parametrize("route", list(STREAM_CALLS))
@pytest.mark.parametrize("case", ["stream_error_event", "stream_error_payload"])
def test_an_error_inside_a_stream_raises(emulator: Emulator, sender: str, route: str,
                                         case: str) -> None:
    method, name, arg = STREAM_CALLS[route]
    expect(emulator, case, APIStatusError,
           lambda: call(dbx(emulator, sender), method, name, arg, sender=sender))


@pytest.mark.parametrize("sender", SENDERS)
@pytest.mark.parametrize("route", list(STREAM_CALLS))
def test_a_byte_order_mark_loses_nothing(emulator: Emulator, sender: str, route: str) -> None:
    method, name, arg = STREAM_CALLS[route]
    plain = text_of(call(dbx(emulator, sender), method, name, arg, sender=sender))
    emulator.configure(hostile="stream_bom")
    marked = text_of(call(dbx(emulator, sender), method, name, arg, sender=sender))
    assert emulator.counters()["hostile"]["stream_bom"]
    assert marked == plain and plain


@pytest.mark.parametrize("sender", SENDERS)
@pytest.mark.parametrize("route", list(STREAM_CALLS))
def test_bytes_that_are_not_utf8_are_refused(emulator: Emulator, sender: str,
                                             route: str) -> None:
    method, name, arg = STREAM_CALLS[route]
    expect(emulator, "stream_non_utf8", ResponseValidationError,
           lambda: call(dbx(emulator, sender), method, name, arg, sender=sender))


@pytest.mark.parametrize("sender", SENDERS)
@pytest.mark.parametrize("route", ["stream_chat", "chat"])
def test_an_endless_line_is_capped(emulator: Emulator, monkeypatch: pytest.MonkeyPatch,
                                   sender: str, route: str) -> None:
    monkeypatch.setattr(defaults, "MAX_EVENT_BYTES", 2**20)
    monkeypatch.setattr(defaults, "MAX_BODY_BYTES", 2**20)
    method, name, arg = (STREAM_CALLS | DATABRICKS_CALLS)[route]
    started = time.monotonic()
    # Refused for its size, or cut by the deadline: bounded either way, never held in memory.
    expect(emulator, "endless_line", SFModelsError,
           lambda: call(dbx(emulator, sender, timeout=10), method, name, arg, sender=sender),
           hostile_endless_bytes=64 * 2**20)
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("sender", SENDERS)
@pytest.mark.parametrize("route", ["chat", "stream_chat"])
def test_a_trickling_answer_is_bounded_by_the_timeout(emulator: Emulator, sender: str,
                                                      route: str) -> None:
    method, name, arg = (STREAM_CALLS | DATABRICKS_CALLS)[route]
    started = time.monotonic()
    expect(emulator, "trickle", APITimeoutError,
           lambda: call(dbx(emulator, sender, timeout=0.5), method, name, arg, sender=sender),
           hostile_trickle_s=0.02)
    # Each byte came within the read timeout; the whole answer would have taken far longer.
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("sender", SENDERS)
@pytest.mark.parametrize("route", ["chat", "stream_chat", "embed"])
def test_a_wrong_content_encoding_is_an_error_of_ours(emulator: Emulator, sender: str,
                                                      route: str) -> None:
    method, name, arg = (STREAM_CALLS | DATABRICKS_CALLS
                         | {"embed": ("embed", "databricks-gte-large-en", ["a", "b"])})[route]
    expect(emulator, "bad_encoding", SFModelsError,
           lambda: call(dbx(emulator, sender), method, name, arg, sender=sender))


@pytest.mark.parametrize("sender", ["httpx", "aiohttp"])
def test_leaving_a_stream_early_closes_it_cleanly(emulator: Emulator, sender: str,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    async def run() -> None:
        async with dbx(emulator, sender) as client:
            for _ in range(3):
                async for _piece in client.astream_chat(LLAMA, USER):
                    break

    with caplog.at_level("DEBUG"):
        asyncio.run(run())
    assert "already running" not in caplog.text
    assert emulator.counters()["in_flight"] == 0


# -- credentials the token endpoints hand out ------------------------------------------------------
@pytest.mark.parametrize("sender", SENDERS)
@pytest.mark.parametrize("provider", ["salesforce", "databricks"])
def test_a_minted_token_with_a_control_character_is_refused(emulator: Emulator, sender: str,
                                                            provider: str) -> None:
    from sfmodels_core.errors import TokenError

    def run() -> Any:
        if provider == "salesforce":
            return call(sf(emulator, sender), "chat", SF_CHAT, USER, sender=sender)
        client = DatabricksClient(host=emulator.databricks_host, env={}, max_retries=0,
                                  client_id=emulator.databricks_client_id,
                                  client_secret=emulator.databricks_client_secret,
                                  async_http="aiohttp" if sender == "aiohttp" else "httpx")
        return call(client, "chat", LLAMA, USER, sender=sender)

    emulator.configure(hostile="token_control_chars")
    with pytest.raises(TokenError) as caught:
        run()
    assert "not shown" in str(caught.value)  # the token is named, never echoed
    api = "salesforce.chat" if provider == "salesforce" else "databricks.invocations"
    assert emulator.counters()["requests"][api] == 0  # nothing was sent with it


@pytest.mark.parametrize("sender", SENDERS)
@pytest.mark.parametrize("case", ["instance_url_http", "instance_url_userinfo"])
def test_an_api_instance_url_off_https_or_with_user_info_is_refused(
        emulator: Emulator, sender: str, case: str) -> None:
    from sfmodels_core.errors import TokenError

    expect(emulator, case, TokenError,
           lambda: call(sf(emulator, sender), "chat", SF_CHAT, USER, sender=sender))


# -- vectors ---------------------------------------------------------------------------------------
VECTOR_CASES = ["vector_null", "vector_strings", "vector_bools", "vector_nested", "vector_empty",
                "vector_mixed_dims", "vector_nan", "vector_inf"]


@pytest.mark.parametrize("sender", SENDERS)
@pytest.mark.parametrize("compact", [False, True], ids=["lists", "compact"])
@pytest.mark.parametrize("provider", ["salesforce", "databricks"])
@pytest.mark.parametrize("case", VECTOR_CASES)
def test_a_bad_vector_is_refused_naming_its_text(emulator: Emulator, sender: str,
                                                 compact: bool, provider: str,
                                                 case: str) -> None:
    texts = ["one", "two", "three"]
    if provider == "salesforce":
        client: Any = sf(emulator, sender)
        model = "sfdc_ai__DefaultOpenAITextEmbeddingAda_002"
    else:  # compact asks Databricks for base64, which the emulator honours
        client, model = dbx(emulator, sender), "databricks-gte-large-en"

    def run() -> Any:
        if sender == "sync":
            return client.embed(model, texts, compact=compact)

        async def go() -> Any:
            async with client:
                return await client.aembed(model, texts, compact=compact)

        return asyncio.run(go())

    error = expect(emulator, case, ResponseValidationError, run)
    assert "text 2" in str(error)  # the last vector of the batch is the bad one


@pytest.mark.parametrize("sender", SENDERS)
@pytest.mark.parametrize("compact", [False, True], ids=["lists", "compact"])
@pytest.mark.parametrize("provider", ["salesforce", "databricks"])
def test_a_later_call_of_another_dimension_is_refused(emulator: Emulator, sender: str,
                                                      compact: bool, provider: str) -> None:
    """One text a call cannot show a mixed job; the client remembers the model's dimension."""
    if provider == "salesforce":
        client: Any = sf(emulator, sender)
        model = "sfdc_ai__DefaultOpenAITextEmbeddingAda_002"
    else:
        client, model = dbx(emulator, sender), "databricks-gte-large-en"

    async def both() -> Any:
        async with client:
            first = await client.aembed(model, ["one", "two"], compact=compact)
            emulator.configure(hostile="vector_mixed_dims")
            try:
                await client.aembed(model, ["three"], compact=compact)
            finally:
                emulator.configure(hostile=None)
            return first

    def run() -> Any:
        if sender != "sync":
            return asyncio.run(both())
        first = client.embed(model, ["one", "two"], compact=compact)
        emulator.configure(hostile="vector_mixed_dims")
        try:
            client.embed(model, ["three"], compact=compact)
        finally:
            emulator.configure(hostile=None)
        return first

    with pytest.raises(ResponseValidationError, match="nor from one model to one client"):
        run()
