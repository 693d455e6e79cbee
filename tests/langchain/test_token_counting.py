"""``trim_messages(token_counter=model)`` works out of the box: no transformers, no download."""

from __future__ import annotations

import builtins
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, trim_messages

from langchain_sfmodels import ChatDatabricks, ChatSalesforce, DatabricksLLM, SalesforceLLM
from sfmodels_core.integration import tokens

pytestmark = pytest.mark.disable_socket

HISTORY = [SystemMessage("You answer questions about orders."),
           HumanMessage("Where is order 1042? " * 20), AIMessage("It ships tomorrow. " * 20),
           HumanMessage("And order 7?")]


@pytest.fixture(params=["salesforce", "databricks"])
def model(request: pytest.FixtureRequest) -> Any:
    if request.param == "salesforce":
        return ChatSalesforce(api_key="t")
    return ChatDatabricks(endpoint="databricks-meta-llama-3-3-70b-instruct", api_key="t",
                          host="https://db.example")


def test_trim_messages_with_the_model_as_counter(model: Any,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_transformers(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("transformers"):
            raise ImportError("transformers is not installed")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_transformers)
    trimmed = trim_messages(HISTORY, max_tokens=60, token_counter=model, strategy="last",
                            include_system=True)
    assert trimmed[0] == HISTORY[0] and trimmed[-1] == HISTORY[-1]
    assert len(trimmed) < len(HISTORY)
    assert model.get_num_tokens_from_messages(trimmed) <= 60


def test_estimates_never_undercount_words() -> None:
    text = "a b c d e f g h"  # 8 words in 15 characters
    assert tokens.count_tokens(text, "databricks-meta-llama-3-3-70b-instruct") >= 8
    assert tokens.count_tokens("x" * 400, "llama") == 100
    assert tokens.count_tokens("", "anything") == 0


def test_openai_models_use_tiktoken_when_it_can_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """The encoding chosen per model family (a stand-in encoder: one token per character)."""
    import sys
    import types

    chosen: list[str] = []

    def get_encoding(name: str) -> Any:
        chosen.append(name)
        return types.SimpleNamespace(encode=lambda text: list(text))

    monkeypatch.setitem(sys.modules, "tiktoken", types.SimpleNamespace(get_encoding=get_encoding))
    tokens._encoder.cache_clear()
    text = "Where is order 1042?"
    try:
        assert ChatSalesforce(api_key="t", model="sfdc_ai__DefaultGPT4Omni").get_num_tokens(
            text) == len(text)
        assert DatabricksLLM(endpoint="databricks-gpt-5", host="https://db.example",
                             api_key="t").get_num_tokens(text) == len(text)
        assert SalesforceLLM(api_key="t", model="sfdc_ai__DefaultGPT35Turbo").get_num_tokens(
            text) == len(text)
        llama = ChatDatabricks(endpoint="databricks-meta-llama-3-3-70b-instruct",
                               host="https://db.example", api_key="t")
        assert llama.get_num_tokens(text) < len(text)  # not OpenAI: the estimate
        assert chosen == ["o200k_base", "o200k_base", "cl100k_base"]
    finally:
        tokens._encoder.cache_clear()


def test_without_tiktoken_files_it_estimates(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    def offline(name: str) -> Any:
        raise OSError("cannot download the encoding")

    monkeypatch.setitem(sys.modules, "tiktoken", types.SimpleNamespace(get_encoding=offline))
    tokens._encoder.cache_clear()
    try:
        assert ChatSalesforce(api_key="t").get_num_tokens("x" * 40) == 10
    finally:
        tokens._encoder.cache_clear()
