"""Odd and hostile input: a result or a clear typed error, never a hang or an httpx error."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from sfmodels_core.errors import (
    APIConnectionError,
    ConfigurationError,
    InvalidInputError,
    NotFoundError,
    SFModelsError,
)
from sfmodels_emulator import Emulator

LLAMA = "databricks-meta-llama-3-3-70b-instruct"
GTE = "databricks-gte-large-en"
UNICODE = "Zürich 東京 مرحبا 👩🏽‍💻 e\u0301 \u200b\U0001f600"


def settings(emu: Emulator) -> dict[str, dict[str, Any]]:
    return {
        "sf": {"domain": emu.salesforce_domain, "client_id": emu.salesforce_client_id,
               "client_secret": emu.salesforce_client_secret, "max_retries": 0},
        "dbx": {"host": emu.databricks_host, "api_key": emu.databricks_token, "max_retries": 0},
    }


def models(emu: Emulator) -> dict[str, Any]:
    import llama_index_sfmodels as li
    from langchain_sfmodels import ChatDatabricks, ChatSalesforce

    s = settings(emu)
    return {
        "ChatSalesforce": ChatSalesforce(**s["sf"]),
        "ChatDatabricks": ChatDatabricks(endpoint=LLAMA, **s["dbx"]),
        "li.SalesforceLLM": li.SalesforceLLM(**s["sf"]),
        "li.DatabricksLLM": li.DatabricksLLM(endpoint=LLAMA, **s["dbx"]),
    }


def ask(model: Any, text: Any) -> str:
    if hasattr(model, "invoke"):
        return str(model.invoke(text).content)
    return str(model.complete(text).text)


def outcome(call: Callable[[], Any]) -> Any:
    """The result, or the error: never an httpx exception, never a hang."""
    started = time.monotonic()
    try:
        return call()
    except httpx.HTTPError as exc:  # pragma: no cover - the failure this file guards against
        pytest.fail(f"an httpx error escaped: {exc!r}")
    except (SFModelsError, ValueError, TypeError) as exc:
        return exc
    finally:
        assert time.monotonic() - started < 10


@pytest.mark.parametrize("name", ["ChatSalesforce", "ChatDatabricks", "li.SalesforceLLM",
                                  "li.DatabricksLLM"])
@pytest.mark.parametrize("text", ["", " ", "x" * 200_000, UNICODE, None, 42, ["list"]],
                         ids=["empty", "blank", "200k", "unicode", "None", "int", "list"])
def test_chat_models_take_odd_input(emulator: Emulator, name: str, text: Any) -> None:
    result = outcome(lambda: ask(models(emulator)[name], text))
    if isinstance(text, str):
        assert isinstance(result, str) and result  # an answer, even to an empty prompt
    elif isinstance(text, list) and name.startswith("Chat"):
        assert isinstance(result, str) and result  # LangChain reads a list as messages
    else:
        assert isinstance(result, (InvalidInputError, ValueError, TypeError)), result
        assert str(result)  # with a message that says what was wrong


def test_unicode_round_trips_through_the_emulator(emulator: Emulator) -> None:
    from langchain_sfmodels import ChatDatabricks

    chat = ChatDatabricks(endpoint=LLAMA, **settings(emulator)["dbx"])
    answer = chat.invoke(f"Context: The office is in {UNICODE}.\n\nQuestion: Where is the "
                         "office?").content
    assert UNICODE.split()[1] in str(answer)


@pytest.mark.parametrize("texts, expected", [
    ([], []), (["ok", 3], InvalidInputError), ("one string", InvalidInputError),
    ([None], InvalidInputError), ([""], 1), ([UNICODE, "x" * 50_000], 2),
])
def test_embeddings_take_odd_input(emulator: Emulator, texts: Any, expected: Any) -> None:
    import llama_index_sfmodels as li
    from langchain_sfmodels import DatabricksEmbeddings, SalesforceEmbeddings

    s = settings(emulator)
    calls = [SalesforceEmbeddings(**s["sf"]).embed_documents,
             DatabricksEmbeddings(endpoint=GTE, **s["dbx"]).embed_documents,
             li.SalesforceEmbedding(**s["sf"]).get_text_embedding_batch,
             li.DatabricksEmbedding(endpoint=GTE, **s["dbx"]).get_text_embedding_batch]
    before = emulator.counters()["requests"]
    for call in calls:
        result = outcome(lambda: call(texts))  # noqa: B023
        if isinstance(expected, type):
            if isinstance(result, list):  # LlamaIndex iterates a string as characters
                assert texts == "one string"
            else:
                assert isinstance(result, (expected, ValueError, TypeError)), result
        elif isinstance(expected, int):
            assert isinstance(result, list) and len(result) == expected
        else:
            assert result == expected
    if texts == []:
        assert emulator.counters()["requests"] == before  # nothing sent for nothing


def test_unknown_models_and_endpoints_are_not_found(emulator: Emulator) -> None:
    from langchain_sfmodels import ChatDatabricks, ChatSalesforce, DatabricksEmbeddings

    s = settings(emulator)
    for call in (lambda: ChatSalesforce(model="sfdc_ai__Nope", **s["sf"]).invoke("hi"),
                 lambda: ChatDatabricks(endpoint="nope", **s["dbx"]).invoke("hi"),
                 lambda: DatabricksEmbeddings(endpoint="nope", **s["dbx"]).embed_query("hi")):
        assert isinstance(outcome(call), NotFoundError)
    for bad in ("", "a/b", "has space"):
        assert isinstance(outcome(
            lambda: ChatDatabricks(endpoint=bad, **s["dbx"]).invoke("hi")),  # noqa: B023
            (InvalidInputError, ValueError))


@pytest.mark.parametrize("host, error", [
    ("http://127.0.0.1:1", APIConnectionError),
    ("not a url", ConfigurationError),
    ("https://", ConfigurationError),
    ("ftp://example.com", ConfigurationError),
])
def test_wrong_hosts_fail_clearly_and_fast(host: str, error: type[Exception]) -> None:
    import llama_index_sfmodels as li
    from langchain_sfmodels import ChatDatabricks

    for call in (lambda: ChatDatabricks(endpoint=LLAMA, host=host, api_key="t",
                                        max_retries=0).invoke("hi"),
                 lambda: li.DatabricksEmbedding(endpoint=GTE, host=host, api_key="t",
                                                max_retries=0).get_query_embedding("hi")):
        result = outcome(call)
        assert isinstance(result, error), result
