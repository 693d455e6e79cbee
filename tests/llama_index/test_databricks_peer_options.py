"""DatabricksLLM/DatabricksEmbedding with the peer's options: use_responses_api, custom_inputs,
workspace_client and target_uri."""

from __future__ import annotations

from pathlib import Path

import pytest
from llama_index.core.base.llms.types import ChatMessage

from llama_index_sfmodels import DatabricksEmbedding, DatabricksLLM
from sfmodels_emulator import Emulator

HI = [ChatMessage(role="user", content="What is Delta Lake?")]


def test_responses_api_and_agent_custom_outputs(emulator: Emulator) -> None:
    creds = {"host": emulator.url, "api_key": emulator.databricks_token}
    chat = DatabricksLLM(endpoint="databricks-gpt-5", **creds).chat(HI)
    responses = DatabricksLLM(endpoint="databricks-gpt-5", use_responses_api=True, **creds)
    answer = responses.chat(HI)
    assert answer.message.content == chat.message.content
    assert answer.raw is not None and answer.raw["object"] == "response"
    last = list(responses.stream_chat(HI))[-1]
    assert last.message.content == chat.message.content
    agent = DatabricksLLM(endpoint="agent-echo", custom_inputs={"user_id": "u-1"},
                          use_responses_api=True, **creds)
    assert agent.chat(HI).additional_kwargs["custom_outputs"] == {"user_id": "u-1"}


def test_workspace_client_and_target_uri(emulator: Emulator, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    sdk = pytest.importorskip("databricks.sdk")
    wc = sdk.WorkspaceClient(host=emulator.url, token=emulator.databricks_token)
    assert DatabricksLLM(endpoint="databricks-meta-llama-3-3-70b-instruct",
                         workspace_client=wc).complete("hi").text
    assert DatabricksEmbedding(endpoint="databricks-gte-large-en",
                               workspace_client=wc).get_query_embedding("x")
    with pytest.raises(ValueError, match="would be ignored"):
        DatabricksLLM(endpoint="e", workspace_client=wc,
                      client=DatabricksLLM(endpoint="e", host=emulator.url, api_key="x").client)
    config = tmp_path / "databrickscfg"
    config.write_text(f"[emu]\nhost = {emulator.url}\ntoken = {emulator.databricks_token}\n")
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(config))
    assert DatabricksLLM(endpoint="databricks-meta-llama-3-3-70b-instruct",
                         target_uri="databricks://emu").complete("hi").text
