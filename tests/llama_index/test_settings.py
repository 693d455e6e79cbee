"""Construction, settings resolution, secrets and class contracts. No sockets are opened."""

from __future__ import annotations

import copy
import json
import pickle
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import httpx
import pytest
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.llms import LLM
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.tools import FunctionTool

import llama_index_sfmodels
from llama_index_sfmodels import (
    DatabricksEmbedding,
    DatabricksLLM,
    SalesforceEmbedding,
    SalesforceFeedbackHandler,
    SalesforceLLM,
)
from llama_index_sfmodels._bulk import WholeList
from sfmodels_core import _validation as adapters
from sfmodels_core.databricks import DatabricksClient
from sfmodels_core.errors import ConfigurationError, InvalidInputError, SFModelsError
from sfmodels_core.integration.fields import SalesforceClientFields as SalesforceConnection
from sfmodels_core.salesforce import SalesforceClient
from sfmodels_core.tool_protocol import TOOLS_HEADER

# Pure code: any attempt to open a socket fails the test.
pytestmark = pytest.mark.disable_socket

SECRET = "s3cr3t-value-never-shown"


def test_exports() -> None:
    assert sorted(llama_index_sfmodels.__all__) == [
        "DatabricksEmbedding", "DatabricksFeedbackHandler", "DatabricksLLM", "FeedbackSubmission",
        "ModelReplyError", "SFModelsError", "SalesforceEmbedding", "SalesforceFeedbackHandler",
        "SalesforceLLM"]
    assert issubclass(llama_index_sfmodels.ModelReplyError, (SFModelsError, ValueError))
    with pytest.raises(AttributeError):
        llama_index_sfmodels.Nope  # noqa: B018


def test_class_hierarchy() -> None:
    assert issubclass(SalesforceLLM, FunctionCallingLLM)
    assert issubclass(DatabricksLLM, FunctionCallingLLM)
    assert issubclass(SalesforceEmbedding, BaseEmbedding)
    assert issubclass(DatabricksEmbedding, BaseEmbedding)
    assert issubclass(SalesforceFeedbackHandler, BaseEventHandler)
    # The settings come first in the MRO; every LlamaIndex method is the framework's or ours.
    mro = SalesforceLLM.__mro__
    assert mro.index(LLM) > mro.index(FunctionCallingLLM) > mro.index(SalesforceConnection)
    ours = [c for c in (*DatabricksLLM.__mro__, *SalesforceEmbedding.__mro__)
            if c.__module__.startswith("llama_index_sfmodels")]
    for name in ("predict_and_call", "chat_with_tools", "structured_predict"):
        assert all(name not in vars(c) for c in ours), name
    # The batch methods are LlamaIndex's own, shown the whole list first (test_bulk_embedding
    # checks that its events, vectors and order are unchanged).
    for name in ("get_text_embedding_batch", "aget_text_embedding_batch"):
        assert [c for c in ours if name in vars(c)] == [WholeList], name
    for cls in (SalesforceLLM, DatabricksLLM, SalesforceEmbedding, DatabricksEmbedding,
                SalesforceFeedbackHandler):
        assert cls.class_name() == cls.__name__
        assert not getattr(cls, "__abstractmethods__", None), cls


def test_import_is_cheap() -> None:
    code = ("import sys, llama_index_sfmodels; "
            "print(any(m.startswith(('llama_index.core', 'httpx')) for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_defaults_and_metadata() -> None:
    sf = SalesforceLLM()
    assert sf.model == "sfdc_ai__DefaultOpenAIGPT4OmniMini"
    meta = sf.metadata
    assert meta.is_chat_model and meta.is_function_calling_model
    assert meta.model_name == sf.model
    custom = SalesforceLLM(model="my_configured_model", context_window=8000, num_output=500)
    assert (custom.metadata.context_window, custom.metadata.num_output) == (8000, 500)
    assert custom.metadata.model_name == "my_configured_model"

    db = DatabricksLLM(model="databricks-claude-sonnet-4-5", max_tokens=300)
    assert db.endpoint == db.model == "databricks-claude-sonnet-4-5"
    assert db.metadata.is_function_calling_model and db.metadata.is_chat_model
    assert db.metadata.num_output == 300
    assert db.metadata.model_name == "databricks-claude-sonnet-4-5"

    assert SalesforceEmbedding().model_name == "sfdc_ai__DefaultOpenAITextEmbeddingAda_002"
    embedding = DatabricksEmbedding(endpoint="databricks-bge-large-en", embed_batch_size=7)
    assert embedding.model_name == embedding.endpoint == "databricks-bge-large-en"
    assert embedding.embed_batch_size == 7


def test_databricks_needs_an_endpoint() -> None:
    with pytest.raises(ValueError, match="endpoint"):
        DatabricksLLM()
    with pytest.raises(ValueError, match="endpoint"):
        DatabricksEmbedding()


def test_missing_credentials_fail_on_first_use_naming_what_is_missing() -> None:
    llm = SalesforceLLM()  # construction never needs credentials
    with pytest.raises(ConfigurationError, match=r"domain \(SALESFORCE_DOMAIN\)"):
        llm.chat([ChatMessage(role="user", content="hi")])
    with pytest.raises(ConfigurationError, match="client_secret"):
        SalesforceEmbedding(domain="https://acme.my.salesforce.com",
                            client_id="key").get_query_embedding("hi")
    with pytest.raises(ConfigurationError, match="DATABRICKS_HOST"):
        DatabricksLLM(endpoint="e").complete("hi")
    with pytest.raises(ConfigurationError, match="credentials are missing"):
        DatabricksEmbedding(endpoint="e", host="https://db.example").get_text_embedding("x")


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SALESFORCE_ACCESS_TOKEN", "tok")
    monkeypatch.setenv("SALESFORCE_API_BASE", "https://api.example.test/einstein/platform/v1")
    assert SalesforceLLM().client.api_base() == "https://api.example.test/einstein/platform/v1"
    monkeypatch.setenv("DATABRICKS_HOST", "https://adb-1.azuredatabricks.net")
    monkeypatch.setenv("DATABRICKS_TOKEN", "dapi")
    assert DatabricksLLM(endpoint="e").client.host == "https://adb-1.azuredatabricks.net"
    # arguments win over the environment
    assert DatabricksLLM(endpoint="e", host="https://other.example").client.host == \
        "https://other.example"


def test_databricks_profile_from_config_file(tmp_path: Path) -> None:
    config = tmp_path / "databrickscfg"
    config.write_text("[DEFAULT]\nhost = https://default.example\ntoken = t0\n\n"
                      "[dev]\nhost = https://dev.example\nclient_id = sp\nclient_secret = x\n")
    llm = DatabricksLLM(endpoint="e", profile="dev", config_file=str(config))
    assert llm.client.host == "https://dev.example"
    assert llm.client.auth.source.refreshable  # OAuth M2M: tokens are minted and refreshed
    default = DatabricksEmbedding(endpoint="e", config_file=str(config))
    assert default.client.host == "https://default.example"
    with pytest.raises(ConfigurationError, match="'prod' is not in"):
        DatabricksLLM(endpoint="e", profile="prod", config_file=str(config)).chat(
            [ChatMessage(role="user", content="hi")])


def test_aliases() -> None:
    assert SalesforceLLM(access_token="abc").api_key.get_secret_value() == "abc"  # type: ignore[union-attr]
    assert DatabricksLLM(endpoint="e", token="dapi").api_key.get_secret_value() == "dapi"  # type: ignore[union-attr]
    assert DatabricksLLM(endpoint="e", extra_params={"top_k": 3}).additional_kwargs == {"top_k": 3}
    assert SalesforceEmbedding(model="m").model_name == "m"


@pytest.mark.parametrize("make", [
    lambda: SalesforceLLM(client_secret=SECRET, api_key=SECRET),
    lambda: SalesforceEmbedding(client_secret=SECRET, access_token=SECRET),
    lambda: SalesforceFeedbackHandler(client_secret=SECRET, api_key=SECRET),
    lambda: DatabricksLLM(endpoint="e", client_secret=SECRET, token=SECRET),
    lambda: DatabricksEmbedding(endpoint="e", client_secret=SECRET, api_key=SECRET),
])
def test_secrets_never_show(make: Any, caplog: pytest.LogCaptureFixture) -> None:
    component = make()
    shown = [repr(component), str(component), component.model_dump_json(),
             str(component.model_dump()), caplog.text]
    if hasattr(component, "to_json"):  # LlamaIndex components: serialization and payloads
        shown += [component.to_json(), json.dumps(component.to_payload())]
    for text in shown:
        assert SECRET not in text
    assert component.api_key.get_secret_value() == SECRET


def test_pickle_drops_the_client_and_deepcopy_shares_it() -> None:
    llm = DatabricksLLM(endpoint="e", host="https://db.example", api_key="dapi")
    first = llm.client
    clone = pickle.loads(pickle.dumps(llm))
    assert clone.api_key.get_secret_value() == "dapi"  # type: ignore[union-attr]
    assert clone.client is not first and clone.client.host == "https://db.example"
    copied = copy.deepcopy(llm)  # the same settings: the same client, pool and token
    assert copied.api_key.get_secret_value() == "dapi"  # type: ignore[union-attr]
    assert copied.client is first
    assert llm.client is first


def test_a_client_can_be_passed_in_and_is_not_closed() -> None:
    client = SalesforceClient(api_key="tok")
    llm = SalesforceLLM(client=client)
    assert llm.client is client
    llm.close()
    assert llm.client is client
    with pytest.raises(TypeError, match="SalesforceClient"):
        SalesforceLLM(client=DatabricksClient(host="https://x.example", api_key="t"))  # type: ignore[arg-type]


def test_close_drops_the_client_it_created() -> None:
    llm = SalesforceLLM(api_key="tok")
    first = llm.client
    llm.close()
    assert llm.client is not first


def test_generation_settings_are_warned_about_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(adapters, "_warned", set())
    with pytest.warns(UserWarning, match="Einstein Studio") as caught:
        SalesforceLLM(temperature=0.2, max_tokens=100)
        SalesforceLLM(temperature=0.5)
    assert sorted(str(w.message).split("'")[1] for w in caught) == ["max_tokens", "temperature"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SalesforceLLM()


# -- what goes on the wire, seen through a mock transport ------------------------------------------
class Capture:
    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = answer
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(json.loads(request.read()))
        return httpx.Response(200, json=self.answer)


def databricks_with(capture: Capture) -> DatabricksClient:
    return DatabricksClient(host="https://db.example", api_key="t",
                            transport=httpx.MockTransport(capture))


def test_databricks_sends_generation_parameters() -> None:
    capture = Capture({"choices": [{"message": {"role": "assistant", "content": "ok"}}]})
    llm = DatabricksLLM(endpoint="e", client=databricks_with(capture), temperature=0.1,
                        max_tokens=50, stop=["\n\n"], additional_kwargs={"top_k": 5})
    llm.chat([ChatMessage(role="user", content="hi")], top_p=0.9, temperature=0.7)
    (body,) = capture.bodies
    assert body == {"messages": [{"role": "user", "content": "hi"}], "temperature": 0.7,
                    "max_tokens": 50, "stop": ["\n\n"], "top_k": 5, "top_p": 0.9}


def test_databricks_tool_request() -> None:
    capture = Capture({"choices": [{"message": {"role": "assistant", "content": "ok"}}]})
    llm = DatabricksLLM(endpoint="e", client=databricks_with(capture))

    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    tool = FunctionTool.from_defaults(fn=add)
    llm.chat_with_tools([tool], user_msg="add 1 and 2", tool_required=True)
    llm.chat_with_tools([tool], user_msg="add 1 and 2", tool_choice="add")
    llm.chat_with_tools([], user_msg="hi", tool_required=True)
    first, forced, plain = capture.bodies
    assert first["tool_choice"] == "required"
    assert first["tools"][0]["function"]["name"] == "add"
    assert first["messages"] == [{"role": "user", "content": "add 1 and 2"}]
    assert forced["tool_choice"] == {"type": "function", "function": {"name": "add"}}
    assert "tools" not in plain and "tool_choice" not in plain


def test_databricks_embedding_instructions() -> None:
    capture = Capture({"data": [{"index": 0, "embedding": [1.0, 0.0]}]})
    embedding = DatabricksEmbedding(endpoint="bge", client=databricks_with(capture),
                                    query_instruction="Represent this query:",
                                    text_instruction="Represent this document:")
    assert embedding.get_query_embedding("q") == [1.0, 0.0]
    embedding.get_text_embedding("d")
    query, text = capture.bodies
    assert query == {"input": ["q"], "instruction": "Represent this query:"}
    assert text == {"input": ["d"], "instruction": "Represent this document:"}


def test_salesforce_sends_no_generation_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(adapters, "_warned", set())
    capture = Capture({"id": "x", "generationDetails": {"generations": [
        {"id": "g", "role": "assistant", "content": "ok"}]}})
    client = SalesforceClient(api_key="t", api_base="https://api.example/einstein/platform/v1",
                              transport=httpx.MockTransport(capture))
    llm = SalesforceLLM(client=client, tags={"app": "demo"})
    with pytest.warns(UserWarning) as caught:
        llm.chat([ChatMessage(role="user", content="hi")], temperature=0.3, top_p=0.5,
                 localization={"defaultLocale": "fr_FR"}, frobnicate=True)
    assert capture.bodies == [{"messages": [{"role": "user", "content": "hi"}],
                               "localization": {"defaultLocale": "fr_FR"},
                               "tags": {"app": "demo"}}]
    warned = " ".join(str(w.message) for w in caught)
    assert "'temperature'" in warned and "'top_p'" in warned and "'frobnicate'" in warned


def salesforce_with(capture: Capture) -> SalesforceClient:
    return SalesforceClient(api_key="t", api_base="https://api.example/einstein/platform/v1",
                            transport=httpx.MockTransport(capture))


def test_salesforce_tool_request_states_the_protocol() -> None:
    call = '{"tool_calls": [{"name": "add", "arguments": {"a": 1, "b": 2}}]}'
    capture = Capture({"id": "x", "generationDetails": {"generations": [
        {"id": "g", "role": "assistant", "content": call}]}})
    llm = SalesforceLLM(client=salesforce_with(capture))

    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    tool = FunctionTool.from_defaults(fn=add)
    hi = [ChatMessage(role="user", content="hi")]
    assert llm.chat(hi).message.content == call  # plain chat: sent and answered as it is
    llm.chat_with_tools([tool], user_msg="add 1 and 2")
    llm.chat_with_tools([tool], user_msg="add 1 and 2", tool_required=True,
                        allow_parallel_tool_calls=True)
    llm.chat_with_tools([tool], user_msg="add 1 and 2", tool_choice="add")
    llm.chat_with_tools([tool], chat_history=[ChatMessage(role="system", content="Be brief."),
                                              *hi], tool_choice="none")
    llm.chat_with_tools([], user_msg="hi")
    plain, auto, required, named, none, none_repair, no_tools = capture.bodies
    assert plain == no_tools == {"messages": [{"role": "user", "content": "hi"}]}
    system, user = auto["messages"]
    assert system["role"] == "system" and system["content"].startswith(TOOLS_HEADER)
    assert '"name": "add"' in system["content"] and "when they help" in system["content"]
    assert user == {"role": "user", "content": "add 1 and 2"}
    # chat_with_tools takes one call unless told otherwise
    assert "Call at most one tool per reply." in system["content"]
    assert "must call at least one tool" in required["messages"][0]["content"]
    assert "Call at most one tool" not in required["messages"][0]["content"]
    assert "must call the tool 'add'" in named["messages"][0]["content"]
    assert none["messages"][0]["content"].startswith("Be brief.\n\n" + TOOLS_HEADER)
    assert "Do not call any tool" in none["messages"][0]["content"]
    # a call when none may be made is sent back once, with the problem named
    assert none_repair["messages"][:2] == none["messages"]
    assert none_repair["messages"][2] == {"role": "assistant", "content": call}
    assert "no tool may be called now" in none_repair["messages"][3]["content"]


def test_salesforce_refuses_bad_tool_arguments_before_sending() -> None:
    capture = Capture({})
    llm = SalesforceLLM(client=salesforce_with(capture))
    tool = FunctionTool.from_defaults(fn=lambda x: x, name="echo", description="Echo x.")
    hi = [ChatMessage(role="user", content="hi")]
    with pytest.raises(InvalidInputError, match="tool_choice must be"):
        llm.chat_with_tools([tool], user_msg="hi", tool_choice="nope")
    with pytest.raises(InvalidInputError, match="without tools"):
        llm.chat(hi, tool_choice="required")
    with pytest.raises(InvalidInputError, match=r"tools\[0\] must be"):
        llm.chat(hi, tools=[3])
    with pytest.raises(InvalidInputError, match="tools in chat, not in completions"):
        llm.complete("hi", tools=[tool])
    with pytest.raises(InvalidInputError, match="stop must be"):
        llm.complete("hi", stop=3)
    with pytest.raises(InvalidInputError, match="prompt must be a string"):
        llm.complete(["hi"])  # type: ignore[arg-type]
    assert capture.bodies == []


def test_serialization_round_trip_leaves_secrets_to_the_environment() -> None:
    llm = DatabricksLLM(endpoint="e", host="https://db.example", token="dapi", temperature=0.2,
                        extra_params={"top_k": 2})
    clone = DatabricksLLM.from_dict(llm.to_dict())
    assert (clone.endpoint, clone.host, clone.temperature, clone.additional_kwargs) == (
        "e", "https://db.example", 0.2, {"top_k": 2})
    assert clone.api_key is None
    embedding = SalesforceEmbedding.from_json(SalesforceEmbedding(model="m").to_json())
    assert embedding.model_name == "m"
