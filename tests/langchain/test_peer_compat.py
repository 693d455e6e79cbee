"""Compatibility with databricks-langchain, option by option.

``PEER`` lists the public constructor arguments and call options of databricks-langchain's
``ChatDatabricks`` and ``DatabricksEmbeddings`` (version 0.22.0, read from its source: the
pydantic fields, ``_generate``/``_stream`` keyword arguments, ``bind_tools`` and
``with_structured_output``) and what ours does with each:

- ``supported``: same name, same meaning;
- ``renamed``: supported under another name or shape, written in the note (and in the docs);
- ``refused``: an error whose message names what to do instead.

Every row has a check that exercises it against the emulator, so the table cannot drift from the
code. The "databricks-langchain" table of docs/compatibility.md is this table.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage
from pydantic import BaseModel, ValidationError

from langchain_sfmodels import ChatDatabricks, DatabricksEmbeddings
from sfmodels_core import DatabricksClient
from sfmodels_core.errors import ConfigurationError
from sfmodels_emulator import Emulator

CHAT = "databricks-meta-llama-3-3-70b-instruct"
EMBED = "databricks-gte-large-en"
QUESTION = "What is Delta Lake?"


@dataclass(frozen=True)
class Row:
    surface: str  # "ChatDatabricks(...)", "invoke/stream option", "result", "DatabricksEmbeddings"
    option: str
    status: str  # "supported" | "renamed" | "refused"
    note: str


PEER: list[Row] = [
    # ChatDatabricks constructor
    Row("ChatDatabricks", "model (alias endpoint)", "supported", "the serving endpoint"),
    Row("ChatDatabricks", "target_uri", "supported",
        "'databricks' or 'databricks://<profile>' selects a ~/.databrickscfg profile"),
    Row("ChatDatabricks", "workspace_client", "supported",
        "a databricks-sdk WorkspaceClient or Config supplies host and credentials "
        "(the databricks-sdk extra); with target_uri as well it is refused, as by the peer"),
    Row("ChatDatabricks", "temperature", "supported", "sent as is"),
    Row("ChatDatabricks", "n", "supported", "one generation per choice"),
    Row("ChatDatabricks", "stop", "supported", "sent as a list"),
    Row("ChatDatabricks", "max_tokens", "supported",
        "sent as is; max_output_tokens with use_responses_api"),
    Row("ChatDatabricks", "extra_params", "supported", "merged into every request body"),
    Row("ChatDatabricks", "stream_usage", "supported", "usage once, on the last chunk"),
    Row("ChatDatabricks", "use_responses_api", "supported",
        "the OpenAI Responses API, with the same messages as the chat path"),
    Row("ChatDatabricks", "timeout", "supported", "seconds per request"),
    Row("ChatDatabricks", "max_retries", "supported", "retries of 429/5xx/connection errors"),
    Row("ChatDatabricks", "use_ai_gateway", "refused",
        "requests use the serving endpoint's route, where its AI Gateway settings apply"),
    Row("ChatDatabricks", "use_ai_gateway_native_api", "refused",
        "use an OpenAI client on the gateway's API, or the serving endpoint's route"),
    # call options
    Row("call option", "stop", "supported", "invoke(..., stop=[...])"),
    Row("call option", "custom_inputs", "supported",
        "sent with the request; also a constructor field here"),
    Row("call option", "stream_usage", "supported", "stream(..., stream_usage=False)"),
    Row("call option", "any other keyword", "supported", "goes into the request body"),
    Row("call option", "bind_tools(tool_choice=auto|none|required|any|<name>|dict)",
        "supported", "the API's tool_choice values"),
    Row("call option", "with_structured_output(method=function_calling|json_mode|json_schema, "
        "include_raw)", "supported", "same methods and include_raw"),
    # results
    Row("result", "message.custom_outputs", "renamed",
        "response_metadata['custom_outputs'] (on the last chunk when streaming)"),
    Row("result", "Responses API content blocks", "renamed",
        "the answer's text is .text, reasoning a LangChain reasoning content block, tool calls "
        "are in tool_calls, as on the chat path"),
    # DatabricksEmbeddings constructor
    Row("DatabricksEmbeddings", "endpoint", "supported", "alias of model"),
    Row("DatabricksEmbeddings", "target_uri", "supported", "as for ChatDatabricks"),
    Row("DatabricksEmbeddings", "query_params", "supported", "added to query request bodies"),
    Row("DatabricksEmbeddings", "documents_params", "supported",
        "added to document request bodies"),
]

#: The peer's pydantic fields, as written in its source (0.22.0).
PEER_CHAT_FIELDS = ("model", "target_uri", "workspace_client", "temperature", "n", "stop",
                    "max_tokens", "extra_params", "stream_usage", "use_responses_api", "timeout",
                    "max_retries", "use_ai_gateway", "use_ai_gateway_native_api")
PEER_EMBEDDINGS_FIELDS = ("endpoint", "target_uri", "query_params", "documents_params")


class Env:
    """What a check needs: the emulator, its credentials, a request log."""

    def __init__(self, emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
        self.emulator = emulator
        self.creds = {"host": emulator.url, "api_key": emulator.databricks_token}
        self.tmp_path = tmp_path
        self.monkeypatch = monkeypatch
        self.sent: list[dict[str, Any]] = []

    def recording_client(self) -> DatabricksClient:
        """A client whose request bodies are logged in ``self.sent`` (answers from the
        emulator)."""
        inner = httpx.HTTPTransport()

        def handle(request: httpx.Request) -> httpx.Response:
            self.sent.append(json.loads(request.content))
            return inner.handle_request(request)

        return DatabricksClient(**self.creds, transport=httpx.MockTransport(handle))

    def profile(self, name: str) -> None:
        config = self.tmp_path / "databrickscfg"
        config.write_text(f"[{name}]\nhost = {self.emulator.url}\n"
                          f"token = {self.emulator.databricks_token}\n")
        self.monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(config))
        for var in ("DATABRICKS_HOST", "DATABRICKS_TOKEN", "DATABRICKS_CLIENT_ID",
                    "DATABRICKS_CLIENT_SECRET", "DATABRICKS_CONFIG_PROFILE"):
            self.monkeypatch.delenv(var, raising=False)


class FakeSDKConfig:
    """Stands in for a databricks-sdk Config, so the row holds with or without the SDK."""

    def __init__(self, host: str, token: str) -> None:
        self.host, self.auth_type, self.token = host, "pat", token

    def authenticate(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Weather(BaseModel):
    """Weather of a city."""

    city: str


def _model(env: Env) -> None:
    for llm in (ChatDatabricks(model=CHAT, **env.creds), ChatDatabricks(endpoint=CHAT,
                                                                        **env.creds)):
        assert llm.model == llm.endpoint == CHAT
        assert llm.invoke(QUESTION).content


def _target_uri(env: Env) -> None:
    env.profile("emu")
    assert ChatDatabricks(endpoint=CHAT, target_uri="databricks://emu").invoke("hi").content
    with pytest.raises(ConfigurationError, match=r"databricks://<profile>"):
        ChatDatabricks(endpoint=CHAT, target_uri="databricks://scope:key").invoke("hi")


def _workspace_client(env: Env) -> None:
    fake = FakeSDKConfig(env.emulator.url, env.emulator.databricks_token)
    assert ChatDatabricks(endpoint=CHAT, workspace_client=fake).invoke("hi").content
    with pytest.raises(ConfigurationError, match="workspace_client= carries its own"):
        ChatDatabricks(endpoint=CHAT, workspace_client=fake, target_uri="databricks").invoke("x")


def _sent_with(env: Env, llm_settings: dict[str, Any], **call: Any) -> dict[str, Any]:
    llm = ChatDatabricks(endpoint=CHAT, client=env.recording_client(), **llm_settings)
    llm.invoke(QUESTION, **call)
    return env.sent[-1]


def _temperature(env: Env) -> None:
    assert _sent_with(env, {"temperature": 0.3})["temperature"] == 0.3


def _n(env: Env) -> None:
    result = ChatDatabricks(endpoint=CHAT, n=2, **env.creds).generate([[HumanMessage("hi")]])
    assert len(result.generations[0]) == 2


def _stop(env: Env) -> None:
    assert _sent_with(env, {"stop": ["."]})["stop"] == ["."]


def _max_tokens(env: Env) -> None:
    assert _sent_with(env, {"max_tokens": 3})["max_tokens"] == 3
    cut = ChatDatabricks(endpoint="databricks-gpt-5", max_tokens=2, use_responses_api=True,
                         **env.creds).invoke(QUESTION)
    assert cut.response_metadata["finish_reason"] == "length"


def _extra_params(env: Env) -> None:
    assert _sent_with(env, {"extra_params": {"top_p": 0.5}})["top_p"] == 0.5


def _stream_usage(env: Env) -> None:
    with_usage = list(ChatDatabricks(endpoint=CHAT, **env.creds).stream("hi"))
    assert with_usage[-1].usage_metadata is not None
    without = list(ChatDatabricks(endpoint=CHAT, stream_usage=False, **env.creds).stream("hi"))
    assert all(c.usage_metadata is None for c in without)


def _use_responses_api(env: Env) -> None:
    llm = ChatDatabricks(endpoint="databricks-gpt-5-codex", use_responses_api=True, **env.creds)
    assert llm.invoke(QUESTION).content


def _timeout_and_retries(env: Env) -> None:
    llm = ChatDatabricks(endpoint=CHAT, timeout=5, max_retries=1, **env.creds)
    assert llm.client.options.timeout == 5
    assert llm.client.options.retry.max_retries == 1


def _refused(name: str) -> Callable[[Env], None]:
    def check(env: Env) -> None:
        with pytest.raises(ValidationError, match=rf"{name} is not supported: .*leave it out"
                           if name == "use_ai_gateway" else rf"{name} is not supported: .*OpenAI"):
            ChatDatabricks(endpoint=CHAT, **{name: True}, **env.creds)
        assert ChatDatabricks(endpoint=CHAT, **{name: False}, **env.creds).invoke("hi").content

    return check


def _call_stop(env: Env) -> None:
    assert _sent_with(env, {}, stop=["!"])["stop"] == ["!"]


def _call_custom_inputs(env: Env) -> None:
    llm = ChatDatabricks(endpoint="agent-echo", **env.creds)
    message = llm.invoke("hi", custom_inputs={"user_id": "u-1"})
    assert message.response_metadata["custom_outputs"] == {"user_id": "u-1"}


def _call_stream_usage(env: Env) -> None:
    chunks = list(ChatDatabricks(endpoint=CHAT, **env.creds).stream("hi", stream_usage=False))
    assert all(c.usage_metadata is None for c in chunks)


def _call_other_keyword(env: Env) -> None:
    assert _sent_with(env, {}, top_k=5)["top_k"] == 5


def _bind_tools(env: Env) -> None:
    llm = ChatDatabricks(endpoint=CHAT, client=env.recording_client())
    expected = {"auto": "auto", "none": "none", "required": "required", "any": "required",
                "Weather": {"type": "function", "function": {"name": "Weather"}}}
    for given, sent in expected.items():
        llm.bind_tools([Weather], tool_choice=given).invoke("Weather in Paris?")
        assert env.sent[-1]["tool_choice"] == sent
    as_dict = {"type": "function", "function": {"name": "Weather"}}
    message = llm.bind_tools([Weather], tool_choice=as_dict).invoke("Weather in Paris?")
    assert message.tool_calls[0]["name"] == "Weather"


def _structured_output(env: Env) -> None:
    llm = ChatDatabricks(endpoint=CHAT, **env.creds)
    for method in ("function_calling", "json_schema"):
        answer = llm.with_structured_output(Weather, method=method).invoke(
            "What is the weather in Paris?")
        assert isinstance(answer, Weather)
    raw = llm.with_structured_output(method="json_mode", include_raw=True).invoke(
        "Answer in JSON: what is the weather in Paris?")
    assert set(raw) == {"raw", "parsed", "parsing_error"}


def _custom_outputs(env: Env) -> None:
    llm = ChatDatabricks(endpoint="agent-echo", custom_inputs={"k": 1}, **env.creds)
    assert llm.invoke("hi").response_metadata["custom_outputs"] == {"k": 1}
    assert list(llm.stream("hi"))[-1].response_metadata["custom_outputs"] == {"k": 1}
    assert not hasattr(llm.invoke("hi"), "custom_outputs")


def _responses_content(env: Env) -> None:
    llm = ChatDatabricks(endpoint="databricks-gpt-5", use_responses_api=True, **env.creds)
    message = llm.invoke(QUESTION)
    assert message.text
    assert [b["type"] for b in message.content] == ["reasoning", "text"]  # type: ignore[index]
    tool = llm.bind_tools([Weather], tool_choice="Weather").invoke("Weather in Paris?")
    assert tool.tool_calls[0]["args"] == {"city": "Paris"}
    streamed: AIMessageChunk | None = None
    for piece in llm.stream(QUESTION):
        streamed = piece if streamed is None else streamed + piece  # type: ignore[assignment]
    assert streamed is not None and streamed.text == message.text


def _embeddings(env: Env) -> None:
    client = env.recording_client()
    emb = DatabricksEmbeddings(endpoint=EMBED, client=client,
                               query_params={"instruction": "query: "},
                               documents_params={"instruction": "doc: "})
    assert emb.endpoint == EMBED
    emb.embed_query("q")
    assert env.sent[-1]["instruction"] == "query: "
    emb.embed_documents(["d"])
    assert env.sent[-1]["instruction"] == "doc: "


def _embeddings_target_uri(env: Env) -> None:
    env.profile("emu")
    assert DatabricksEmbeddings(endpoint=EMBED, target_uri="databricks://emu").embed_query("x")


CHECKS: dict[tuple[str, str], Callable[[Env], None]] = {
    ("ChatDatabricks", "model (alias endpoint)"): _model,
    ("ChatDatabricks", "target_uri"): _target_uri,
    ("ChatDatabricks", "workspace_client"): _workspace_client,
    ("ChatDatabricks", "temperature"): _temperature,
    ("ChatDatabricks", "n"): _n,
    ("ChatDatabricks", "stop"): _stop,
    ("ChatDatabricks", "max_tokens"): _max_tokens,
    ("ChatDatabricks", "extra_params"): _extra_params,
    ("ChatDatabricks", "stream_usage"): _stream_usage,
    ("ChatDatabricks", "use_responses_api"): _use_responses_api,
    ("ChatDatabricks", "timeout"): _timeout_and_retries,
    ("ChatDatabricks", "max_retries"): _timeout_and_retries,
    ("ChatDatabricks", "use_ai_gateway"): _refused("use_ai_gateway"),
    ("ChatDatabricks", "use_ai_gateway_native_api"): _refused("use_ai_gateway_native_api"),
    ("call option", "stop"): _call_stop,
    ("call option", "custom_inputs"): _call_custom_inputs,
    ("call option", "stream_usage"): _call_stream_usage,
    ("call option", "any other keyword"): _call_other_keyword,
    ("call option", PEER[18].option): _bind_tools,
    ("call option", PEER[19].option): _structured_output,
    ("result", "message.custom_outputs"): _custom_outputs,
    ("result", "Responses API content blocks"): _responses_content,
    ("DatabricksEmbeddings", "endpoint"): _embeddings,
    ("DatabricksEmbeddings", "target_uri"): _embeddings_target_uri,
    ("DatabricksEmbeddings", "query_params"): _embeddings,
    ("DatabricksEmbeddings", "documents_params"): _embeddings,
}


def test_every_peer_field_has_a_row() -> None:
    chat = {row.option.split(" ")[0] for row in PEER if row.surface == "ChatDatabricks"}
    assert chat == set(PEER_CHAT_FIELDS)
    embeddings = {row.option for row in PEER if row.surface == "DatabricksEmbeddings"}
    assert embeddings == set(PEER_EMBEDDINGS_FIELDS)
    assert set(CHECKS) == {(row.surface, row.option) for row in PEER}
    assert {row.status for row in PEER} <= {"supported", "renamed", "refused"}


def test_the_table_matches_the_installed_peer() -> None:
    """When databricks-langchain is installed (the bench extra), its fields are the table's."""
    peer = pytest.importorskip("databricks_langchain")
    assert set(peer.ChatDatabricks.model_fields) - set(ChatDatabricks.model_fields) <= set(
        PEER_CHAT_FIELDS)
    assert set(peer.ChatDatabricks.model_fields) >= set(PEER_CHAT_FIELDS)
    assert set(peer.DatabricksEmbeddings.model_fields) >= set(PEER_EMBEDDINGS_FIELDS)


@pytest.mark.parametrize("row", PEER, ids=lambda row: f"{row.surface}:{row.option}")
def test_row(row: Row, emulator: Emulator, tmp_path: Path,
             monkeypatch: pytest.MonkeyPatch) -> None:
    CHECKS[(row.surface, row.option)](Env(emulator, tmp_path, monkeypatch))
