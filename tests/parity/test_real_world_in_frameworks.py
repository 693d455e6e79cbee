"""The real-world response corpus replayed through the LangChain and LlamaIndex classes.

The same fixtures as ``tests/core/unit/test_real_world_fixtures.py`` (the core); here each chat
fixture answers a framework call, and what a LangChain or LlamaIndex user reads must match the
sidecar's ``expect``: the text (clean of reasoning), the reasoning in the framework's own form,
the tool calls (never merged), the usage counted once (or honestly absent), the typed error.
"""

from __future__ import annotations

from typing import Any

import pytest

from sfmodels_core import DatabricksClient, SalesforceClient
from sfmodels_core import errors as error_module
from tests.fixtures.real_world import Fixture, ids, load

pytestmark = pytest.mark.allow_hosts([])

CHAT = [f for f in load() if f.call in ("databricks.chat", "databricks.stream_chat",
                                        "salesforce.chat")]


def client(fixture: Fixture) -> Any:
    transport = fixture.transport()
    if fixture.provider == "databricks":
        return DatabricksClient(host="https://adb-1.2.azuredatabricks.net", api_key="dapi-x",
                                env={}, transport=transport, max_retries=0)
    return SalesforceClient(api_key="sf-token", api_base="https://api.example.com/v1", env={},
                            transport=transport, max_retries=0)


def langchain(fixture: Fixture) -> dict[str, Any]:
    from langchain_sfmodels import ChatDatabricks, ChatSalesforce

    model: Any = (ChatDatabricks(endpoint="ep", client=client(fixture))
                  if fixture.provider == "databricks"
                  else ChatSalesforce(client=client(fixture)))
    if fixture.method == "stream_chat":
        chunks = list(model.stream("Hello"))
        message = chunks[0]
        for chunk in chunks[1:]:
            message += chunk
        counted = [c.usage_metadata for c in chunks if c.usage_metadata]
        assert len(counted) <= 1  # usage once, never summed over chunks
    else:
        message = model.invoke("Hello")
    blocks = message.content if isinstance(message.content, list) else []
    reasoning = "".join(b.get("reasoning", "") for b in blocks
                        if isinstance(b, dict) and b.get("type") == "reasoning") or None
    usage = message.usage_metadata
    calls = [*message.tool_calls, *message.invalid_tool_calls]
    return {"text": message.text, "reasoning": reasoning,
            "finish_reason": message.response_metadata.get("finish_reason"),
            "tool_calls": [c["name"] for c in calls],
            "usage": None if not usage else (usage["input_tokens"], usage["output_tokens"])}


def llama_index(fixture: Fixture) -> dict[str, Any]:
    from llama_index.core.base.llms.types import ChatMessage, ThinkingBlock, ToolCallBlock

    from llama_index_sfmodels import DatabricksLLM, SalesforceLLM

    model: Any = (DatabricksLLM(endpoint="ep", client=client(fixture))
                  if fixture.provider == "databricks" else SalesforceLLM(client=client(fixture)))
    messages = [ChatMessage(role="user", content="Hello")]
    if fixture.method == "stream_chat":
        responses = list(model.stream_chat(messages))
        response = responses[-1]
        counted = [r for r in responses if "prompt_tokens" in r.additional_kwargs]
        assert len(counted) <= 1
        extra = counted[0].additional_kwargs if counted else {}
    else:
        response = model.chat(messages)
        extra = response.additional_kwargs
    blocks = response.message.blocks
    reasoning = "".join(b.content or "" for b in blocks if isinstance(b, ThinkingBlock)) or None
    return {"text": response.message.content or "", "reasoning": reasoning,
            "finish_reason": response.additional_kwargs.get("finish_reason"),
            "tool_calls": [b.tool_name for b in blocks if isinstance(b, ToolCallBlock)],
            "usage": (extra["prompt_tokens"], extra["completion_tokens"])
            if "prompt_tokens" in extra else None}


@pytest.mark.parametrize("read", [langchain, llama_index], ids=["langchain", "llama_index"])
@pytest.mark.parametrize("fixture", CHAT, ids=ids(CHAT))
def test_chat_fixtures_read_the_same_in_both_frameworks(fixture: Fixture, read: Any) -> None:
    expect = fixture.expect
    if "error" in expect:
        wanted = getattr(error_module, expect["error"]["class"])
        with pytest.raises(wanted):
            read(fixture)
        return
    seen = read(fixture)
    if "text" in expect:
        assert seen["text"] == expect["text"]
    if "reasoning" in expect:
        assert seen["reasoning"] == expect["reasoning"]
    if expect.get("finish_reason") is not None:
        assert seen["finish_reason"] == expect["finish_reason"]
    if "tool_calls" in expect:
        assert seen["tool_calls"] == [c["name"] for c in expect["tool_calls"]]
    if "usage" in expect:
        usage = expect["usage"]
        assert seen["usage"] == (None if usage is None else (usage["prompt_tokens"],
                                                             usage["completion_tokens"]))


def test_the_corpus_has_chat_shapes_for_both_providers() -> None:
    assert {f.provider for f in CHAT} == {"databricks", "salesforce"}
    assert any(f.method == "stream_chat" for f in CHAT)
