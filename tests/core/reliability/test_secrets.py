"""No secret reaches a log record, a repr, an exception or a cassette, for any class."""

from __future__ import annotations

import asyncio
import logging
import pickle
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sfmodels_emulator import Emulator
from sfmodels_emulator.state import (
    DEFAULT_DATABRICKS_CLIENT_SECRET,
    DEFAULT_DATABRICKS_TOKEN,
    DEFAULT_SALESFORCE_CLIENT_SECRET,
)

ROOT = Path(__file__).resolve().parents[3]
SF_SECRET = "sf-consumer-secret-7Hq2"
DBX_PAT = "dapi-personal-token-9Kx4"
DBX_SECRET = "sp-client-secret-3Vb8"
LLAMA = "databricks-meta-llama-3-3-70b-instruct"
GTE = "databricks-gte-large-en"
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}")
BEARER = re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._-]")


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(salesforce_client_secret=SF_SECRET, databricks_token=DBX_PAT,
                  databricks_client_secret=DBX_SECRET) as emu:
        yield emu


def exercise(obj: Any, call: Any, failing: Any, seen: list[str]) -> None:
    """Use ``obj`` once successfully and once failing; keep every text it showed."""
    call()
    with pytest.raises(Exception) as info:
        failing()
    seen += [repr(obj), str(obj), str(info.value), repr(info.value)]
    seen.append(repr(getattr(info.value, "__dict__", {})))
    seen.append(repr(pickle.loads(pickle.dumps(info.value)).__dict__))


def test_every_class_keeps_secrets_out_of_logs_reprs_and_errors(
        emu: Emulator, caplog: pytest.LogCaptureFixture) -> None:
    from llama_index.core.llms import ChatMessage

    import llama_index_sfmodels as li
    from langchain_sfmodels import (
        ChatDatabricks,
        ChatSalesforce,
        DatabricksEmbeddings,
        DatabricksLLM,
        SalesforceEmbeddings,
        SalesforceFeedbackHandler,
        SalesforceLLM,
    )

    caplog.set_level(logging.DEBUG)
    sf = {"domain": emu.salesforce_domain, "client_id": emu.salesforce_client_id,
          "client_secret": SF_SECRET}
    pat = {"host": emu.databricks_host, "api_key": DBX_PAT}
    m2m = {"host": emu.databricks_host, "client_id": emu.databricks_client_id,
           "client_secret": DBX_SECRET}
    seen: list[str] = []
    tokens: list[str] = []

    chat = ChatSalesforce(**sf)
    exercise(chat, lambda: chat.invoke("hi"), lambda: chat.invoke("hi", model="nope"), seen)
    llm = SalesforceLLM(**sf)
    exercise(llm, lambda: llm.invoke("hi"),
             lambda: SalesforceLLM(model="nope", **sf).invoke("hi"), seen)
    emb = SalesforceEmbeddings(**sf)
    exercise(emb, lambda: emb.embed_documents(["a"]),
             lambda: SalesforceEmbeddings(model="nope", **sf).embed_query("a"), seen)
    handler = SalesforceFeedbackHandler(**sf)

    def chat_then_feedback() -> None:
        chat.invoke("hi", config={"callbacks": [handler]})
        handler.submit("GOOD")

    exercise(handler, chat_then_feedback, lambda: handler.submit("GOOD", run_id="unknown"), seen)
    for creds in (pat, m2m):
        dchat = ChatDatabricks(endpoint=LLAMA, **creds)
        exercise(dchat, lambda: list(dchat.stream("hi")),  # noqa: B023
                 lambda: dchat.invoke("hi", model="nope"), seen)  # noqa: B023
    dllm = DatabricksLLM(endpoint=LLAMA, **pat)
    exercise(dllm, lambda: dllm.invoke("hi"),
             lambda: DatabricksLLM(endpoint="nope", **pat).invoke("hi"), seen)
    demb = DatabricksEmbeddings(endpoint=GTE, **m2m)
    exercise(demb, lambda: asyncio.run(demb.aembed_documents(["a"])),
             lambda: DatabricksEmbeddings(endpoint="nope", **m2m).embed_query("a"), seen)

    lsf = li.SalesforceLLM(**sf)
    exercise(lsf, lambda: lsf.chat([ChatMessage(role="user", content="hi")]),
             lambda: li.SalesforceLLM(model="nope", **sf).complete("hi"), seen)
    lemb = li.SalesforceEmbedding(**sf)
    exercise(lemb, lambda: lemb.get_query_embedding("a"),
             lambda: li.SalesforceEmbedding(model="nope", **sf).get_query_embedding("a"), seen)
    ldbx = li.DatabricksLLM(endpoint=LLAMA, **m2m)
    exercise(ldbx, lambda: list(ldbx.stream_complete("hi")),
             lambda: li.DatabricksLLM(endpoint="nope", **m2m).complete("hi"), seen)
    ldemb = li.DatabricksEmbedding(endpoint=GTE, **pat)
    exercise(ldemb, lambda: ldemb.get_text_embedding("a"),
             lambda: li.DatabricksEmbedding(endpoint="nope", **pat).get_text_embedding("a"), seen)
    lhandler = li.SalesforceFeedbackHandler(**sf)
    exercise(lhandler, lambda: lhandler.submit("GOOD", generation_id="g-1"),
             lambda: lhandler.submit("GOOD"), seen)

    for obj in (chat, emb, handler, lsf, ldbx):  # the tokens they minted must not show either
        client = getattr(obj, "client", None) or getattr(obj, "_salesforce", None) or getattr(
            obj, "_databricks", None)
        token = client.auth.token if client is not None else None
        if token is not None:
            tokens.append(token.value.get_secret_value())
    assert len(tokens) >= 3
    assert caplog.records
    texts = seen + [record.getMessage() for record in caplog.records]
    for secret in (SF_SECRET, DBX_PAT, DBX_SECRET, *tokens):
        leaks = [t for t in texts if secret in t]
        assert not leaks, f"a secret leaked into: {leaks[0][:200]!r}"


def test_no_cassette_or_tracked_file_holds_a_token_or_secret() -> None:
    secrets = (DEFAULT_SALESFORCE_CLIENT_SECRET, DEFAULT_DATABRICKS_TOKEN,
               DEFAULT_DATABRICKS_CLIENT_SECRET)
    cassettes = sorted((ROOT / "cassettes").rglob("*"))
    files = [p for p in cassettes if p.is_file()]
    assert files, "no cassettes found"
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        assert not JWT.search(text), f"{path.name} holds a JWT"
        assert not BEARER.search(text), f"{path.name} holds an authorization header"
        for secret in secrets:
            assert secret not in text, f"{path.name} holds an emulator credential"


WRONG_PAT = "dapi-wrong-token-unique-2Jm6"
WRONG_SECRET = "sf-wrong-secret-unique-8Pt1"
CREDENTIAL_VARS = ("SALESFORCE_DOMAIN", "SALESFORCE_CLIENT_ID", "SALESFORCE_CLIENT_SECRET",
                   "SALESFORCE_ACCESS_TOKEN", "SALESFORCE_API_BASE", "DATABRICKS_HOST",
                   "DATABRICKS_TOKEN", "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET",
                   "DATABRICKS_CONFIG_PROFILE")


def failure(call: Any) -> BaseException:
    with pytest.raises(Exception) as info:
        call()
    return info.value


def everything_shown(error: BaseException) -> list[str]:
    import traceback

    return [str(error), repr(error), repr(getattr(error, "__dict__", {})),
            "".join(traceback.format_exception_only(error))]


def test_failure_paths_logs_and_cli_output_hold_no_secret(
        emu: Emulator, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Unique secrets and the tokens minted with them, through every failure a user meets (a
    refused connection, a 401, a refused token, a secret with a line break), sync, async and
    on aiohttp, with DEBUG logging of sfmodels, httpx, httpcore and aiohttp, and through the
    command line."""
    from langchain_sfmodels import ChatDatabricks, ChatSalesforce
    from sfmodels.cli import main
    from sfmodels_core import DatabricksClient, SalesforceClient

    for name in ("", "sfmodels", "httpx", "httpcore", "aiohttp"):
        caplog.set_level(logging.DEBUG, logger=name or None)
    sf = {"domain": emu.salesforce_domain, "client_id": emu.salesforce_client_id,
          "client_secret": SF_SECRET, "env": {}, "max_retries": 0}
    seen: list[str] = []
    errors: list[BaseException] = []

    # minted tokens, to look for as well
    minted = SalesforceClient(**sf)
    minted.chat("sfdc_ai__DefaultGPT4Omni", [{"role": "user", "content": "hi"}])
    token = minted.auth.token
    assert token is not None
    sf_token = token.value.get_secret_value()
    m2m = DatabricksClient(host=emu.databricks_host, client_id=emu.databricks_client_id,
                           client_secret=DBX_SECRET, env={}, max_retries=0,
                           async_http="aiohttp")
    asyncio.run(m2m.achat(LLAMA, [{"role": "user", "content": "hi"}]))
    assert m2m.auth.token is not None
    dbx_token = m2m.auth.token.value.get_secret_value()
    seen += [repr(minted), str(minted), repr(m2m), str(m2m)]
    minted.close()
    m2m.close()

    # a refused connection: sync, async, aiohttp
    dead = "http://127.0.0.1:1"
    errors.append(failure(lambda: SalesforceClient(
        api_key=sf_token, api_base=dead, env={}, max_retries=0).chat(
        "m", [{"role": "user", "content": "hi"}])))
    errors.append(failure(lambda: asyncio.run(DatabricksClient(
        host=dead, api_key=DBX_PAT, env={}, max_retries=0).achat(
        LLAMA, [{"role": "user", "content": "hi"}]))))
    errors.append(failure(lambda: asyncio.run(DatabricksClient(
        host=dead, api_key=dbx_token, env={}, max_retries=0, async_http="aiohttp").aembed(
        GTE, ["a"]))))
    errors.append(failure(lambda: SalesforceClient(
        domain=dead, client_id="id", client_secret=SF_SECRET, env={}, max_retries=0).embed(
        "m", ["a"])))
    assert "Connection refused" in str(errors[0])
    # 401s: a wrong token, a wrong secret (sync and async)
    errors.append(failure(lambda: DatabricksClient(
        host=emu.databricks_host, api_key=WRONG_PAT, env={}, max_retries=0).chat(
        LLAMA, [{"role": "user", "content": "hi"}])))
    errors.append(failure(lambda: asyncio.run(SalesforceClient(
        **{**sf, "client_secret": WRONG_SECRET}).achat(
        "sfdc_ai__DefaultGPT4Omni", [{"role": "user", "content": "hi"}]))))
    # a secret with a line break, given to a core client and to a framework class
    errors.append(failure(lambda: DatabricksClient(host=emu.databricks_host,
                                                   api_key=f"{DBX_PAT}\nX-Evil: 1", env={})))
    broken = ChatDatabricks(endpoint=LLAMA, host=emu.databricks_host,
                            api_key=f"dapi\x01{DBX_PAT}")
    seen += [repr(broken), str(broken)]
    errors.append(failure(lambda: broken.invoke("hi")))
    wrong = ChatSalesforce(domain=emu.salesforce_domain, client_id=emu.salesforce_client_id,
                           client_secret=WRONG_SECRET, max_retries=0)
    errors.append(failure(lambda: wrong.invoke("hi")))
    seen += [repr(wrong), str(wrong)]
    for error in errors:
        seen += everything_shown(error)

    # the command line, on the same emulator: working, then with a wrong secret
    for var in CREDENTIAL_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", "/nonexistent")
    for key, value in emu.env().items():
        monkeypatch.setenv(key, value)
    assert main(["token"]) == 0
    assert main(["chat", "Hello"]) == 0
    assert main(["chat", "--provider", "databricks", "Hello"]) == 0
    monkeypatch.setenv("SALESFORCE_CLIENT_SECRET", WRONG_SECRET)
    monkeypatch.setenv("DATABRICKS_TOKEN", WRONG_PAT)
    assert main(["token"]) != 0
    monkeypatch.setenv("DATABRICKS_TOKEN", f"{DBX_PAT}\r\n")
    monkeypatch.setenv("SALESFORCE_CLIENT_SECRET", f"sf\x01{SF_SECRET}")
    assert main(["token"]) != 0
    printed = capsys.readouterr()
    assert "FAILED" in printed.out
    seen += [printed.out, printed.err]

    records = [record.getMessage() for record in caplog.records]
    loggers = {record.name.split(".")[0] for record in caplog.records}
    assert {"sfmodels", "httpx", "httpcore"} <= loggers, loggers
    for text in seen + records:
        for secret in (SF_SECRET, DBX_PAT, DBX_SECRET, WRONG_PAT, WRONG_SECRET, sf_token,
                       dbx_token):
            assert secret not in text, f"a secret leaked into: {text[:300]!r}"
        assert not BEARER.search(text), f"an authorization header leaked into: {text[:300]!r}"
