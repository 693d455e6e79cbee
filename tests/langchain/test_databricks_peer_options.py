"""ChatDatabricks' peer options on the emulator: use_responses_api, custom_inputs/custom_outputs,
workspace_client and target_uri (and the latter two on the other Databricks classes)."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from pydantic import BaseModel

from langchain_sfmodels import ChatDatabricks, DatabricksEmbeddings, DatabricksLLM
from sfmodels_emulator import Emulator

QUESTION = "What is Delta Lake?"


class GetWeather(BaseModel):
    """Get the weather of a city."""

    city: str


@pytest.fixture
def creds(emulator: Emulator) -> dict[str, str]:
    return {"host": emulator.url, "api_key": emulator.databricks_token}


def test_the_responses_api_gives_the_same_messages_as_chat(creds: dict[str, str]) -> None:
    chat = ChatDatabricks(endpoint="databricks-gpt-5", **creds)
    responses = ChatDatabricks(endpoint="databricks-gpt-5", use_responses_api=True, **creds)
    a, b = chat.invoke(QUESTION), responses.invoke(QUESTION)
    assert isinstance(b, AIMessage) and b.text == a.text
    assert b.usage_metadata is not None and b.usage_metadata["total_tokens"] > 0
    assert b.response_metadata["finish_reason"] == "stop"
    full: AIMessageChunk | None = None
    for piece in responses.stream(QUESTION):
        full = piece if full is None else full + piece  # type: ignore[assignment]
    assert full is not None and full.text == b.text
    assert full.usage_metadata == b.usage_metadata
    # Reasoning, invoked or streamed, as a reasoning content block (the chat path has none).
    def reasoning(message: AIMessage) -> list[str]:
        return [b["reasoning"] for b in message.content  # type: ignore[index]
                if isinstance(b, dict) and b.get("type") == "reasoning"]

    assert reasoning(b) and reasoning(full) == reasoning(b)
    assert isinstance(a.content, str)


async def test_the_responses_api_async_and_with_tools(creds: dict[str, str]) -> None:
    llm = ChatDatabricks(endpoint="databricks-gpt-5-codex", use_responses_api=True, **creds)
    bound = llm.bind_tools([GetWeather], tool_choice="GetWeather")
    ask = [HumanMessage("What is the weather in Paris?")]
    message = await bound.ainvoke(ask)
    assert message.tool_calls[0]["name"] == "GetWeather"
    assert message.tool_calls[0]["args"] == {"city": "Paris"}
    streamed: AIMessageChunk | None = None
    async for piece in bound.astream(ask):
        streamed = piece if streamed is None else streamed + piece  # type: ignore[assignment]
    assert streamed is not None and streamed.tool_calls[0]["args"] == {"city": "Paris"}
    result = ToolMessage("Sunny, 24C", tool_call_id=message.tool_calls[0]["id"])
    answer = await llm.ainvoke([*ask, message, result])
    assert "Sunny" in str(answer.content)
    for method in ("function_calling", "json_schema"):
        structured = llm.with_structured_output(GetWeather, method=method).invoke(
            "What is the weather in Oslo?")
        assert isinstance(structured, GetWeather) and structured.city == "Oslo"


@pytest.mark.parametrize("use_responses_api", [False, True])
def test_custom_inputs_in_custom_outputs_out(creds: dict[str, str],
                                             use_responses_api: bool) -> None:
    llm = ChatDatabricks(endpoint="agent-echo", custom_inputs={"user_id": "u-1"},
                         use_responses_api=use_responses_api, **creds)
    assert llm.invoke("hi").response_metadata["custom_outputs"] == {"user_id": "u-1"}
    per_call = llm.invoke("hi", custom_inputs={"user_id": "u-2"})
    assert per_call.response_metadata["custom_outputs"] == {"user_id": "u-2"}
    pieces = list(llm.stream("hi"))
    assert pieces[-1].response_metadata["custom_outputs"] == {"user_id": "u-1"}
    plain = ChatDatabricks(endpoint="databricks-gpt-5", **creds).invoke("hi")
    assert "custom_outputs" not in plain.response_metadata


def test_workspace_client_and_target_uri(emulator: Emulator, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    sdk = pytest.importorskip("databricks.sdk")
    wc = sdk.WorkspaceClient(host=emulator.url, token=emulator.databricks_token)
    chat = ChatDatabricks(endpoint="databricks-meta-llama-3-3-70b-instruct", workspace_client=wc)
    assert chat.invoke("hi").content
    assert "workspace_client" not in repr(chat)
    assert DatabricksEmbeddings(endpoint="databricks-gte-large-en",
                                workspace_client=wc).embed_query("x")
    assert DatabricksLLM(endpoint="databricks-meta-llama-3-3-70b-instruct",
                         workspace_client=wc).invoke("hi")
    config = tmp_path / "databrickscfg"
    config.write_text(f"[emu]\nhost = {emulator.url}\ntoken = {emulator.databricks_token}\n")
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(config))
    for name in ("DATABRICKS_HOST", "DATABRICKS_TOKEN", "DATABRICKS_CLIENT_ID"):
        monkeypatch.delenv(name, raising=False)
    assert ChatDatabricks(endpoint="databricks-meta-llama-3-3-70b-instruct",
                          target_uri="databricks://emu").invoke("hi").content
    assert DatabricksEmbeddings(endpoint="databricks-gte-large-en",
                                target_uri="databricks://emu").embed_query("x")
