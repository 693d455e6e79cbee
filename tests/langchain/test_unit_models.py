"""The LangChain classes over core clients whose HTTP goes to scripted fakes (no sockets)."""

from __future__ import annotations

import copy
import json
import warnings
from typing import Any

import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage
from pydantic import ValidationError

from langchain_sfmodels import (
    ChatDatabricks,
    ChatSalesforce,
    DatabricksEmbeddings,
    DatabricksLLM,
    SalesforceEmbeddings,
    SalesforceLLM,
)
from sfmodels_core import _validation as adapters
from sfmodels_core.errors import ConfigurationError, InvalidInputError, NotFoundError

from .fakes import (
    FakeService,
    chat_stream,
    databricks_client,
    db_chat,
    db_embeddings,
    salesforce_client,
    sf_chat,
    sf_embeddings,
    sf_generation,
    sse,
)

ENV_NAMES = ("SALESFORCE_DOMAIN", "SALESFORCE_CLIENT_ID", "SALESFORCE_CLIENT_SECRET",
             "SALESFORCE_ACCESS_TOKEN", "SALESFORCE_API_BASE", "DATABRICKS_HOST",
             "DATABRICKS_TOKEN", "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET",
             "DATABRICKS_CONFIG_PROFILE")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> pytest.MonkeyPatch:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "no-such-databrickscfg"))
    return monkeypatch


@pytest.fixture
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(adapters, "_warned", set())


# -- settings -------------------------------------------------------------------------------------
def test_credentials_resolve_lazily_and_errors_name_what_is_missing(
        clean_env: pytest.MonkeyPatch) -> None:
    chat = ChatSalesforce()  # no credentials anywhere: construction still works
    with pytest.raises(ConfigurationError) as info:
        chat.invoke("hi")
    assert "SALESFORCE_DOMAIN" in str(info.value) and "SALESFORCE_CLIENT_ID" in str(info.value)
    with pytest.raises(ConfigurationError, match="DATABRICKS_HOST"):
        ChatDatabricks(endpoint="ep").invoke("hi")
    with pytest.raises(ConfigurationError, match="credentials are missing"):
        DatabricksEmbeddings(endpoint="ep", host="https://w.example.test").embed_query("hi")


def test_unset_settings_go_to_the_core_which_reads_the_environment(
        clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("SALESFORCE_ACCESS_TOKEN", "env-token")
    clean_env.setenv("SALESFORCE_API_BASE", "https://env.example.test/einstein/platform/v1")
    chat = ChatSalesforce()
    assert chat.api_key is None  # nothing copied from the environment into the fields
    assert chat.client.api_base() == "https://env.example.test/einstein/platform/v1"
    assert chat.client.auth.source.static_token().value.get_secret_value() == "env-token"
    # The core's ambiguity check still applies: a token and a client id in the environment.
    clean_env.setenv("SALESFORCE_CLIENT_ID", "cid")
    with pytest.raises(ConfigurationError, match="Ambiguous"):
        ChatSalesforce().invoke("hi")


def test_databricks_arguments_take_precedence_as_a_group(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("DATABRICKS_HOST", "https://env.example.test")
    clean_env.setenv("DATABRICKS_TOKEN", "dapi-env")
    llm = ChatDatabricks(endpoint="ep", client_id="sp", client_secret="sp-secret")
    # The service principal given as arguments wins; the token in the environment is not mixed
    # in (reading the environment into the fields here would make this ambiguous).
    assert type(llm.client.auth.source).__name__ == "DatabricksM2M"
    assert llm.client.host == "https://env.example.test"


def test_aliases_profile_and_tuning(clean_env: pytest.MonkeyPatch, tmp_path: Any) -> None:
    config = tmp_path / "cfg"
    config.write_text("[dev]\nhost = https://dev.example.test\ntoken = dapi-dev\n")
    llm = ChatDatabricks(model="ep", profile="dev", config_file=str(config), timeout=5,
                         max_retries=1)
    assert llm.endpoint == "ep" and llm.config_profile == "dev"
    assert llm.profile is None  # LangChain's model-profile attribute is left alone
    client = llm.client
    assert client.host == "https://dev.example.test"
    assert client._transport.policy.max_retries == 1
    assert client._transport.timeout.read == 5
    assert ChatSalesforce(access_token="t").api_key is not None
    assert DatabricksLLM(endpoint="ep", token="t").api_key is not None
    assert DatabricksEmbeddings(model="gte").endpoint == "gte"


def test_secrets_stay_out_of_repr_and_unknown_settings_are_refused() -> None:
    chat = ChatSalesforce(api_key="super-secret-token", client_secret="other-secret")
    assert "super-secret-token" not in repr(chat) and "other-secret" not in str(chat)
    with pytest.raises(ValidationError, match="temprature"):
        ChatDatabricks(endpoint="ep", temprature=0.5)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="messages"):
        ChatDatabricks(endpoint="ep", extra_params={"messages": []})
    with pytest.raises(TypeError, match="client must be a SalesforceClient"):
        ChatSalesforce(client=object())
    with pytest.raises(ValidationError, match="input cannot be set"):
        DatabricksEmbeddings(endpoint="gte", query_params={"input": ["x"]})
    with pytest.raises(ValidationError, match="instruction must be a string"):
        DatabricksEmbeddings(endpoint="gte", documents_params={"instruction": 3})
    for option in ("compact", "resume_from"):  # the client's options, never body fields
        with pytest.raises(ValidationError, match=f"{option} is an option of the client"):
            DatabricksEmbeddings(endpoint="gte", documents_params={option: True})


def test_copies_share_the_client() -> None:
    service = FakeService(sf_chat())
    chat = ChatSalesforce(api_key="t", api_base="https://x.example.test")
    core = chat.client
    assert copy.deepcopy(chat).client is core
    assert chat.model_copy().client is core
    given = ChatSalesforce(client=salesforce_client(service))
    assert copy.deepcopy(given).client is given.client


def test_not_serializable() -> None:
    for cls in (ChatSalesforce, ChatDatabricks, SalesforceLLM, DatabricksLLM):
        assert cls.is_lc_serializable() is False


# -- ChatSalesforce -------------------------------------------------------------------------------
def test_chat_salesforce_request_and_options() -> None:
    service = FakeService(sf_chat())
    chat = ChatSalesforce(client=salesforce_client(service), localization={
        "defaultLocale": "en_US"}, salesforce_tags={"app": "demo"})
    message = chat.invoke([("system", "Be brief."), ("human", "Hi")])
    request = service.requests[0]
    assert request.url.path.endswith("/models/sfdc_ai__DefaultOpenAIGPT4OmniMini/chat-generations")
    assert service.bodies()[0] == {
        "messages": [{"role": "system", "content": "Be brief."},
                     {"role": "user", "content": "Hi"}],
        "localization": {"defaultLocale": "en_US"}, "tags": {"app": "demo"}}
    assert message.id == "chatcmpl-1"
    assert message.response_metadata["generation_id"] == "gen-1"
    chat.invoke("Hi", model="sfdc_ai__DefaultGPT4Omni", salesforce_tags={"app": "other"},
                localization=None)
    assert service.requests[1].url.path.endswith(
        "/models/sfdc_ai__DefaultGPT4Omni/chat-generations")
    assert service.bodies()[1] == {"messages": [{"role": "user", "content": "Hi"}],
                                   "tags": {"app": "other"}}


def test_chat_salesforce_stop_is_applied_on_the_client() -> None:
    service = FakeService(sf_chat("Hello there. How can I help?"))
    chat = ChatSalesforce(client=salesforce_client(service), stop=["How"])
    assert chat.invoke("hi").content == "Hello there. "
    assert chat.invoke("hi", stop=["there"]).content == "Hello "
    chunks = list(chat.stream("hi", stop=["."]))
    assert [c.content for c in chunks] == ["Hello there"]
    assert chunks[0].chunk_position == "last"
    assert "stop" not in service.bodies()[0]


def test_chat_salesforce_warns_once_about_settings_it_cannot_send(fresh_warnings: None) -> None:
    service = FakeService(sf_chat())
    chat = ChatSalesforce(client=salesforce_client(service), temperature=0.3, max_tokens=50)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        chat.invoke("a")
        chat.invoke("b")
    texts = [str(w.message) for w in caught]
    assert len(texts) == 2  # one per setting, once per process
    assert all("Einstein Studio" in t for t in texts)
    assert "temperature" in texts[0] and "max_tokens" in texts[1]
    assert all("temperature" not in body for body in service.bodies())


def test_chat_salesforce_refuses_unknown_options() -> None:
    service = FakeService(sf_chat())
    chat = ChatSalesforce(client=salesforce_client(service))
    with pytest.raises(InvalidInputError, match=r"unexpected option.*functions"):
        chat.invoke("hi", functions=[{"name": "f"}])
    with pytest.raises(InvalidInputError, match="seed"):
        chat.bind_tools([], seed=7).invoke("hi")
    assert service.requests == []


async def test_chat_salesforce_async_and_astream() -> None:
    service = FakeService(sf_chat("Async answer"))
    chat = ChatSalesforce(client=salesforce_client(service))
    assert (await chat.ainvoke("hi")).content == "Async answer"
    chunks = [c async for c in chat.astream("hi")]
    assert len(chunks) == 1 and chunks[0].content == "Async answer"
    assert chunks[0].usage_metadata == {"input_tokens": 5, "output_tokens": 7, "total_tokens": 12}


def test_chat_salesforce_errors_come_from_the_core() -> None:
    service = FakeService(lambda r: __import__("httpx").Response(
        404, json={"errorCode": "NOT_FOUND", "message": "Model x not found"}))
    with pytest.raises(NotFoundError, match="Model x not found"):
        ChatSalesforce(client=salesforce_client(service)).invoke("hi")


# -- SalesforceLLM ---------------------------------------------------------------------------------
def test_salesforce_llm_generation_info() -> None:
    service = FakeService(sf_generation("Once upon a time. The end."))
    llm = SalesforceLLM(client=salesforce_client(service), stop=["The end"])
    result = llm.generate(["Tell a story"])
    generation = result.generations[0][0]
    assert generation.text == "Once upon a time. "
    assert generation.generation_info is not None
    assert generation.generation_info["generation_id"] == "gen-t"
    assert generation.generation_info["model_provider"] == "salesforce"
    assert result.llm_output == {"model_name": "sfdc_ai__DefaultOpenAIGPT4OmniMini",
                                 "token_usage": {"prompt_tokens": 2, "completion_tokens": 4,
                                                 "total_tokens": 6}}
    assert service.bodies() == [{"prompt": "Tell a story"}]


async def test_salesforce_llm_async() -> None:
    service = FakeService(sf_generation("Async story"))
    llm = SalesforceLLM(client=salesforce_client(service))
    assert await llm.ainvoke("Tell a story") == "Async story"


# -- ChatDatabricks -------------------------------------------------------------------------------
def test_chat_databricks_request_body() -> None:
    service = FakeService(db_chat())
    llm = ChatDatabricks(client=databricks_client(service), endpoint="ep", temperature=0.1,
                         max_tokens=20, stop=["X"], n=1, extra_params={"top_p": 0.9,
                                                                        "guardrails": {"on": 1}})
    llm.invoke("hi")
    assert service.requests[0].url.path == "/serving-endpoints/ep/invocations"
    assert service.bodies()[0] == {"messages": [{"role": "user", "content": "hi"}],
                                   "top_p": 0.9, "guardrails": {"on": 1}, "temperature": 0.1,
                                   "max_tokens": 20, "stop": ["X"]}
    llm.invoke("hi", temperature=0.7, model="other", top_k=5)
    assert service.requests[1].url.path == "/serving-endpoints/other/invocations"
    assert service.bodies()[1]["temperature"] == 0.7 and service.bodies()[1]["top_k"] == 5


def test_chat_databricks_n_gives_several_generations() -> None:
    body = db_chat("A")
    body["choices"].append({"index": 1, "finish_reason": "stop",
                            "message": {"role": "assistant", "content": "B"}})
    service = FakeService(body)
    llm = ChatDatabricks(client=databricks_client(service), endpoint="ep", n=2)
    result = llm.generate([[HumanMessage("hi")]])
    assert [g.text for g in result.generations[0]] == ["A", "B"]
    assert service.bodies()[0]["n"] == 2
    with pytest.raises(InvalidInputError, match="n > 1 cannot be streamed"):
        list(llm.stream("hi"))


def test_chat_databricks_bind_tools_body() -> None:
    service = FakeService(db_chat(None, tool_calls=[  # type: ignore[arg-type]
        {"id": "c1", "type": "function", "function": {"name": "add", "arguments": '{"a": 1}'}}]))
    llm = ChatDatabricks(client=databricks_client(service), endpoint="ep")

    def add(a: int) -> int:
        """Add one."""
        return a + 1

    message = llm.bind_tools([add], tool_choice="add", parallel_tool_calls=False).invoke("go")
    body = service.bodies()[0]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "add"}}
    assert body["tools"][0]["function"]["name"] == "add"
    assert body["parallel_tool_calls"] is False
    assert message.tool_calls == [{"name": "add", "args": {"a": 1}, "id": "c1",
                                   "type": "tool_call"}]


def test_bound_tools_of_the_wrong_shape_are_refused_before_sending() -> None:
    service = FakeService(db_chat("never"))
    llm = ChatDatabricks(client=databricks_client(service), endpoint="ep")
    bad = {"type": "function", "function": {"name": "f", "parameters": "nope"}}
    with pytest.raises(InvalidInputError, match=r"tools\[0\]\.function\.parameters must be a "
                                                "JSON Schema object"):
        llm.bind_tools([bad]).invoke("go")
    salesforce = FakeService(sf_chat("never"))
    chat = ChatSalesforce(client=salesforce_client(salesforce), model="m")
    with pytest.raises(InvalidInputError, match=r"tools\[0\]\.function\.parameters must be a "
                                                "JSON Schema object"):
        chat.bind_tools([bad]).invoke("go")
    assert service.requests == [] and salesforce.requests == []


def test_chat_databricks_stream_reports_cumulative_usage_once() -> None:
    service = FakeService(lambda r: chat_stream(["Hel", "lo", "!"]))
    llm = ChatDatabricks(client=databricks_client(service), endpoint="ep")
    chunks = list(llm.stream("hi"))
    assert service.bodies()[0]["stream"] is True
    with_usage = [c for c in chunks if c.usage_metadata]
    assert len(with_usage) == 1
    full: AIMessageChunk = chunks[0]
    for chunk in chunks[1:]:
        full = full + chunk
    assert full.content == "Hello!"
    assert full.usage_metadata == {"input_tokens": 4, "output_tokens": 3, "total_tokens": 7}
    assert full.response_metadata["finish_reason"] == "stop"
    assert chunks[-1].chunk_position == "last"
    no_usage = list(llm.stream("hi", stream_usage=False))
    assert not any(c.usage_metadata for c in no_usage)


async def test_chat_databricks_astream_and_streaming_invoke() -> None:
    service = FakeService(lambda r: chat_stream(["a", "b"], usage_every=False))
    llm = ChatDatabricks(client=databricks_client(service), endpoint="ep", streaming=True)
    text = "".join([str(c.content) async for c in llm.astream("hi")])
    assert text == "ab"
    message = await llm.ainvoke("hi")  # streaming=True: invoke goes through the stream
    assert message.content == "ab" and service.bodies()[-1]["stream"] is True
    assert message.usage_metadata == {"input_tokens": 4, "output_tokens": 2, "total_tokens": 6}


def test_chat_databricks_stream_error_event() -> None:
    service = FakeService(lambda r: sse({"error_code": "BAD_REQUEST", "message": "nope"}))
    with pytest.raises(Exception, match="nope"):
        list(ChatDatabricks(client=databricks_client(service), endpoint="ep").stream("hi"))


# -- DatabricksLLM --------------------------------------------------------------------------------
def _completion(text: str) -> dict[str, Any]:
    return {"id": "cmpl-1", "model": "served", "choices": [
        {"index": 0, "text": text, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}}


def test_databricks_llm_invoke_and_stream() -> None:
    service = FakeService(_completion("Delta Lake is a table format."))
    llm = DatabricksLLM(client=databricks_client(service), endpoint="ep", max_tokens=10)
    result = llm.generate(["What is Delta?"])
    assert result.generations[0][0].text == "Delta Lake is a table format."
    assert result.llm_output is not None and result.llm_output["token_usage"]["total_tokens"] == 3
    assert service.bodies()[0] == {"prompt": "What is Delta?", "max_tokens": 10}
    service.default = lambda r: sse(
        {"id": "c", "model": "served", "choices": [{"index": 0, "text": "Del"}]},
        {"id": "c", "choices": [{"index": 0, "text": "ta", "finish_reason": "stop"}],
         "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}})
    assert "".join(llm.stream("x")) == "Delta"
    streamed = DatabricksLLM(client=databricks_client(service), endpoint="ep", streaming=True)
    result = streamed.generate(["x"])
    assert result.generations[0][0].text == "Delta"
    assert result.llm_output is not None and result.llm_output["token_usage"]["total_tokens"] == 3


async def test_databricks_llm_async() -> None:
    service = FakeService(lambda r: sse(
        {"id": "c", "choices": [{"index": 0, "text": "A"}]},
        {"id": "c", "choices": [{"index": 0, "text": "B", "finish_reason": "stop"}]}))
    llm = DatabricksLLM(client=databricks_client(service), endpoint="ep")
    assert "".join([piece async for piece in llm.astream("x")]) == "AB"
    service.default = _completion("done")
    assert await llm.ainvoke("x") == "done"


# -- embeddings -----------------------------------------------------------------------------------
def test_salesforce_embeddings_batches_in_order() -> None:
    service = FakeService(sf_embeddings)
    texts = ["a", "bb", "ccc", "dddd", "eeeee"]
    embeddings = SalesforceEmbeddings(
        client=salesforce_client(service, batch_size=2, max_concurrency=2),
        salesforce_tags={"t": 1})
    vectors = embeddings.embed_documents(texts)
    assert [v[0] for v in vectors] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert sorted(len(b["input"]) for b in service.bodies()) == [1, 2, 2]
    assert all(b["tags"] == {"t": 1} for b in service.bodies())
    assert embeddings.embed_query("xyz") == [3.0, 1.0]


def test_embeddings_batch_settings_reach_the_client() -> None:
    embeddings = SalesforceEmbeddings(api_key="t", api_base="https://x.example.test",
                                      batch_size=3, max_concurrency=7)
    assert (embeddings.client.batch_size, embeddings.client.max_concurrency) == (3, 7)
    defaults = DatabricksEmbeddings(endpoint="gte", host="https://w.example.test", api_key="t")
    assert defaults.client.batch_size == 150
    with pytest.raises(ValidationError):
        SalesforceEmbeddings(batch_size=0)


async def test_databricks_embeddings_instructions_and_async() -> None:
    service = FakeService(db_embeddings)
    embeddings = DatabricksEmbeddings(
        client=databricks_client(service), endpoint="bge",
        query_instruction="Represent this sentence for searching relevant passages:",
        documents_params={"instruction": "doc:"})
    embeddings.embed_query("q")
    embeddings.embed_documents(["d1", "d2"])
    await embeddings.aembed_query("q")
    assert await embeddings.aembed_documents(["abc"]) == [[3.0, 0.5]]
    bodies = service.bodies()
    assert bodies[0] == {"input": ["q"], "instruction":
                         "Represent this sentence for searching relevant passages:"}
    assert bodies[1] == {"input": ["d1", "d2"], "instruction": "doc:"}
    assert bodies[2]["instruction"].startswith("Represent") and bodies[3]["instruction"] == "doc:"
    assert service.requests[0].url.path == "/serving-endpoints/bge/invocations"


def test_databricks_embeddings_params_go_into_the_body_as_they_are() -> None:
    service = FakeService(db_embeddings)
    embeddings = DatabricksEmbeddings(
        client=databricks_client(service), endpoint="custom",
        query_params={"instruction": "query:", "truncate": "END", "dimensions": 256},
        documents_params={"normalize": False, "extra": {"k": [1, 2]}, "skipped": None},
        document_instruction="passage:")
    embeddings.embed_query("q")
    embeddings.embed_documents(["d"])
    assert service.bodies() == [
        {"input": ["q"], "instruction": "query:", "truncate": "END", "dimensions": 256},
        {"input": ["d"], "instruction": "passage:", "normalize": False, "extra": {"k": [1, 2]}}]


def test_embeddings_bad_input_is_refused_before_sending() -> None:
    service = FakeService(db_embeddings)
    embeddings = DatabricksEmbeddings(client=databricks_client(service), endpoint="gte")
    with pytest.raises(InvalidInputError, match="texts"):
        embeddings.embed_documents("not a list")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match=r"texts\[1\] must be a string"):
        embeddings.embed_documents(["ok", 3])  # type: ignore[list-item]
    assert service.requests == []


def test_request_bodies_are_deterministic() -> None:
    service = FakeService(db_chat())
    llm = ChatDatabricks(client=databricks_client(service), endpoint="ep", temperature=0)
    llm.invoke("same")
    llm.invoke("same")
    first, second = (r.content for r in service.requests)
    assert first == second and json.loads(first)["temperature"] == 0


def test_models_pickle_without_their_client() -> None:
    import pickle

    chat = ChatSalesforce(api_key="t", api_base="https://x.example.test", temperature=None)
    chat.client  # noqa: B018 - create the client
    copy_ = pickle.loads(pickle.dumps(chat))
    assert copy_.api_key is not None and copy_.api_key.get_secret_value() == "t"
    assert copy_.client is not chat.client


def test_batch_llm_output_sums_usage() -> None:
    service = FakeService(sf_chat())
    chat = ChatSalesforce(client=salesforce_client(service))
    result = chat.generate([[HumanMessage("a")], [HumanMessage("b")]])
    assert result.llm_output is not None
    assert result.llm_output["token_usage"] == {"prompt_tokens": 10, "completion_tokens": 14,
                                                "total_tokens": 24}
    assert result.llm_output["model_name"] == "sfdc_ai__DefaultOpenAIGPT4OmniMini"


def test_import_stays_cheap() -> None:
    """Importing the package, and even loading every class, leaves httpx and the core's clients
    unloaded until a client is needed (the default names come from ``sfmodels_core.defaults``,
    which loads nothing else)."""
    import subprocess
    import sys

    code = ("import sys, langchain_sfmodels\n"
            "assert 'langchain_core.language_models.chat_models' not in sys.modules\n"
            "from langchain_sfmodels import *\n"
            "ChatSalesforce(); ChatDatabricks(endpoint='ep'); SalesforceEmbeddings()\n"
            "DatabricksEmbeddings(endpoint='ep'); SalesforceLLM(); DatabricksLLM(endpoint='ep')\n"
            "heavy = [m for m in sys.modules if m.split('.')[0] == 'httpx' or m in (\n"
            "    'sfmodels_core._transport', 'sfmodels_core.salesforce._client',\n"
            "    'sfmodels_core.databricks._client')]\n"
            "assert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
