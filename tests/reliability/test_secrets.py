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

ROOT = Path(__file__).resolve().parents[2]
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
