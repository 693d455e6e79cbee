"""The LangChain classes in chains, retrievers and agents, against the live local emulator."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel, BaseLLM
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate, PromptTemplate
from langchain_core.runnables import Runnable, RunnablePassthrough
from langchain_core.tools import tool
from langchain_core.vectorstores import InMemoryVectorStore
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

import langchain_sfmodels
from langchain_sfmodels import (
    ChatDatabricks,
    ChatSalesforce,
    DatabricksEmbeddings,
    DatabricksLLM,
    SalesforceEmbeddings,
    SalesforceFeedbackHandler,
    SalesforceLLM,
)
from sfmodels_core.errors import (
    AuthenticationError,
    InvalidInputError,
    NotFoundError,
)

if TYPE_CHECKING:
    from sfmodels_emulator import Emulator

CHAT_ENDPOINT = "databricks-meta-llama-3-3-70b-instruct"
EMBEDDING_ENDPOINT = "databricks-gte-large-en"


def salesforce(emulator: Emulator) -> dict[str, Any]:
    return {"api_key": emulator.mint_salesforce_token(),
            "api_base": emulator.salesforce_api_base}


def databricks(emulator: Emulator) -> dict[str, Any]:
    return {"host": emulator.databricks_host, "api_key": emulator.databricks_token}


# -- what the classes are -------------------------------------------------------------------------
def test_public_names_and_bases() -> None:
    assert sorted(langchain_sfmodels.__all__) == sorted([
        "ChatSalesforce", "SalesforceLLM", "SalesforceEmbeddings", "ChatDatabricks",
        "DatabricksLLM", "DatabricksEmbeddings", "SalesforceFeedbackHandler",
        "DatabricksFeedbackHandler", "FeedbackSubmission", "ModelReplyError", "SFModelsError"])
    for chat in (ChatSalesforce, ChatDatabricks):
        assert issubclass(chat, BaseChatModel) and issubclass(chat, Runnable)
    for llm in (SalesforceLLM, DatabricksLLM):
        assert issubclass(llm, BaseLLM) and not issubclass(llm, BaseChatModel)
    for embeddings in (SalesforceEmbeddings, DatabricksEmbeddings):
        assert issubclass(embeddings, Embeddings)
        assert embeddings.__mro__.index(BaseModel) < embeddings.__mro__.index(Embeddings)
    assert issubclass(SalesforceFeedbackHandler, BaseCallbackHandler)
    # The shared settings come before LangChain's bases, so their fields are the ones used.
    for cls in (ChatSalesforce, ChatDatabricks, SalesforceLLM, DatabricksLLM):
        names = [base.__name__ for base in cls.__mro__]
        settings = ("SalesforceClientFields" if "Salesforce" in cls.__name__
                    else "DatabricksClientFields")
        framework = "BaseChatModel" if cls.__name__.startswith("Chat") else "BaseLLM"
        assert names.index(settings) < names.index(framework)


# -- retrieval ------------------------------------------------------------------------------------
DOCUMENTS = [
    "The Eiffel Tower in Paris was completed in 1889 for the World's Fair.",
    "Mount Fuji is the highest mountain in Japan, at 3,776 metres.",
    "The Amazon river carries more water than any other river on Earth.",
    "Lake Baikal in Siberia is the deepest lake in the world.",
]


def _rag_chain(llm: BaseChatModel, embeddings: Embeddings) -> Runnable[str, str]:
    store = InMemoryVectorStore.from_documents([Document(d) for d in DOCUMENTS], embeddings)
    retriever = store.as_retriever(search_kwargs={"k": 2})
    prompt = ChatPromptTemplate.from_messages([
        ("system", "Answer the question using only the following context.\n\n"
                   "Context:\n{context}"),
        ("human", "{question}")])

    def join(docs: list[Document]) -> str:
        return "\n".join(d.page_content for d in docs)

    return ({"context": retriever | join, "question": RunnablePassthrough()}
            | prompt | llm | StrOutputParser())


@pytest.mark.parametrize("provider", ["salesforce", "databricks"])
async def test_retrieval_chain_answers_from_the_documents(emulator: Emulator,
                                                          provider: str) -> None:
    llm: BaseChatModel
    embeddings: Embeddings
    if provider == "salesforce":
        llm, embeddings = ChatSalesforce(**salesforce(emulator)), SalesforceEmbeddings(
            **salesforce(emulator))
    else:
        llm = ChatDatabricks(endpoint=CHAT_ENDPOINT, **databricks(emulator))
        embeddings = DatabricksEmbeddings(endpoint=EMBEDDING_ENDPOINT, **databricks(emulator))
    chain = _rag_chain(llm, embeddings)
    assert "1889" in chain.invoke("When was the Eiffel Tower completed?")
    assert "3,776" in await chain.ainvoke("How high is Mount Fuji?")
    streamed = "".join(chain.stream("Which lake is the deepest in the world?"))
    assert "Baikal" in streamed


# -- an agent loop --------------------------------------------------------------------------------
@tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"It is 21 degrees and sunny in {city}."


def _run_agent(llm: Runnable[Any, BaseMessage], question: str) -> list[BaseMessage]:
    messages: list[BaseMessage] = [HumanMessage(question)]
    for _ in range(4):
        answer = llm.invoke(messages)
        assert isinstance(answer, AIMessage)
        messages.append(answer)
        if not answer.tool_calls:
            return messages
        for call in answer.tool_calls:
            messages.append(get_weather.invoke(call))
    raise AssertionError("the agent did not finish")


def test_tool_calling_agent_loop(emulator: Emulator) -> None:
    llm = ChatDatabricks(endpoint=CHAT_ENDPOINT, **databricks(emulator)).bind_tools([get_weather])
    messages = _run_agent(llm, "What is the weather in Paris?")
    first = messages[1]
    assert isinstance(first, AIMessage)
    assert first.tool_calls[0]["name"] == "get_weather"
    assert first.tool_calls[0]["args"] == {"city": "Paris"}
    assert messages[2].type == "tool"
    final = messages[-1]
    assert isinstance(final, AIMessage) and not final.tool_calls
    assert "21 degrees and sunny in Paris" in final.text


async def test_tool_calls_stream_as_chunks(emulator: Emulator) -> None:
    llm = ChatDatabricks(endpoint=CHAT_ENDPOINT, **databricks(emulator))
    bound = llm.bind_tools([get_weather], tool_choice="get_weather")
    chunks = [c async for c in bound.astream("Weather in Rome please")]
    assert sum(1 for c in chunks if c.tool_call_chunks) > 1  # arguments arrive in pieces
    full = chunks[0]
    for chunk in chunks[1:]:
        full = full + chunk
    assert isinstance(full, AIMessageChunk)
    assert full.tool_calls[0]["name"] == "get_weather"
    assert full.tool_calls[0]["args"] == {"city": "Rome"}
    assert full.response_metadata["finish_reason"] == "tool_calls"


@pytest.mark.parametrize("choice", ["none", "auto"])
def test_tool_choice_none_and_auto(emulator: Emulator, choice: str) -> None:
    llm = ChatDatabricks(endpoint=CHAT_ENDPOINT, **databricks(emulator))
    answer = llm.bind_tools([get_weather], tool_choice=choice).invoke("Hello there")
    assert isinstance(answer, AIMessage) and not answer.tool_calls and answer.text


# -- structured output ----------------------------------------------------------------------------
class Person(BaseModel):
    """A person mentioned in the text."""

    name: str = Field(description="The person's name")
    age: int = Field(description="The person's age in years")


class Contact(BaseModel):
    """Only strings: JSON mode promises JSON, not the schema's types."""

    name: str
    age: str


class PersonDict(TypedDict):
    """A person mentioned in the text."""

    name: str
    age: int


QUESTION = "Alice Smith is 42 years old. Return a JSON object with 'name' and 'age' keys."


@pytest.mark.parametrize("method", ["function_calling", "json_schema", "json_mode"])
async def test_structured_output_methods(emulator: Emulator, method: str) -> None:
    llm = ChatDatabricks(endpoint=CHAT_ENDPOINT, **databricks(emulator))
    schema = Contact if method == "json_mode" else Person
    structured = llm.with_structured_output(schema, method=method)  # type: ignore[arg-type]
    person = structured.invoke(QUESTION)
    assert isinstance(person, schema)
    if isinstance(person, Person):
        assert person.age == 42
    assert isinstance(await structured.ainvoke(QUESTION), schema)
    streamed = list(structured.stream(QUESTION))
    assert streamed and isinstance(streamed[-1], schema)
    assert isinstance([c async for c in structured.astream(QUESTION)][-1], schema)
    as_dict = llm.with_structured_output(PersonDict, method=method)  # type: ignore[arg-type]
    assert set(as_dict.invoke(QUESTION)) >= {"name", "age"}  # type: ignore[arg-type]


@pytest.mark.parametrize("method", ["function_calling", "json_schema", "json_mode"])
def test_structured_output_include_raw(emulator: Emulator, method: str) -> None:
    llm = ChatDatabricks(endpoint=CHAT_ENDPOINT, **databricks(emulator))
    out = llm.with_structured_output(Person, method=method,  # type: ignore[arg-type]
                                     include_raw=True).invoke(QUESTION)
    assert isinstance(out, dict) and isinstance(out["raw"], AIMessage)
    if method == "json_mode":
        # JSON mode does not enforce the schema's types: the error is returned, not raised.
        assert out["parsed"] is None and out["parsing_error"] is not None
    else:
        assert isinstance(out["parsed"], Person) and out["parsing_error"] is None


def test_structured_output_options(emulator: Emulator) -> None:
    llm = ChatDatabricks(endpoint=CHAT_ENDPOINT, **databricks(emulator))
    with pytest.raises(ValueError, match="method"):
        llm.with_structured_output(Person, method="xml")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="schema is required"):
        llm.with_structured_output(None)
    with pytest.raises(ValueError, match="Unexpected arguments"):
        llm.with_structured_output(Person, mode="x")
    loose = llm.with_structured_output(None, method="json_mode").invoke(
        "Give me a JSON object with a greeting")
    assert isinstance(loose, dict)


# -- streaming usage ------------------------------------------------------------------------------
@pytest.mark.parametrize("usage_mode", ["every", "last", "none"])
async def test_streaming_usage_is_counted_once(emulator: Emulator, usage_mode: str) -> None:
    emulator.configure(usage_mode=usage_mode)
    llm = ChatDatabricks(endpoint=CHAT_ENDPOINT, **databricks(emulator))
    prompt = "Write me a short poem about the sea and the sky"
    expected = llm.invoke(prompt).usage_metadata
    for chunks in (list(llm.stream(prompt)), [c async for c in llm.astream(prompt)]):
        reported = [c.usage_metadata for c in chunks if c.usage_metadata]
        total = chunks[0]
        for chunk in chunks[1:]:
            total = total + chunk
        if usage_mode == "none":
            assert reported == [] and total.usage_metadata is None
        else:
            assert len(reported) == 1
            assert total.usage_metadata == expected


def test_llm_classes_in_chains(emulator: Emulator) -> None:
    prompt = PromptTemplate.from_template("Tell me about {topic}.")
    for llm in (SalesforceLLM(**salesforce(emulator)),
                DatabricksLLM(endpoint=CHAT_ENDPOINT, **databricks(emulator))):
        chain = prompt | llm | StrOutputParser()
        assert "Delta" in chain.invoke({"topic": "Delta Lake"})
        assert "Delta" in "".join(chain.stream({"topic": "Delta Lake"}))
        assert len(chain.batch([{"topic": "a"}, {"topic": "b"}])) == 2


def test_client_credentials_mint_one_token(emulator: Emulator) -> None:
    chat = ChatSalesforce(domain=emulator.salesforce_domain,
                          client_id=emulator.salesforce_client_id,
                          client_secret=emulator.salesforce_client_secret)
    chat.batch(["one", "two", "three"])
    counters = emulator.counters()
    assert counters["tokens_minted"]["salesforce"] == 1
    assert counters["requests"]["salesforce.chat"] == 3


def test_embedding_batches_and_concurrency(emulator: Emulator) -> None:
    emulator.configure(embedding_max_batch=4)
    texts = [f"document number {i}" for i in range(10)]
    embeddings = DatabricksEmbeddings(endpoint=EMBEDDING_ENDPOINT, batch_size=4,
                                      max_concurrency=2, **databricks(emulator))
    vectors = embeddings.embed_documents(texts)
    assert len(vectors) == 10 and vectors[3] == embeddings.embed_query("document number 3")
    counters = emulator.counters()
    assert counters["requests"]["databricks.invocations"] == 4  # 3 batches, then the query
    assert counters["max_in_flight"] <= 2
    too_big = SalesforceEmbeddings(batch_size=5, **salesforce(emulator))
    before = emulator.counters()["requests"]["salesforce.embeddings"]
    # Refused with a 400 that names the limit: the batches are split, not the call failed.
    assert len(too_big.embed_documents(texts)) == 10
    # Two batches of 5 are refused, or one when the first split has already cut the other to
    # the new size before it was sent (both happen with two threads); then 4 that fit.
    assert emulator.counters()["requests"]["salesforce.embeddings"] - before in (1 + 4, 2 + 4)


# -- bad input ------------------------------------------------------------------------------------
def test_bad_input_is_refused_before_anything_is_sent(emulator: Emulator) -> None:
    chat = ChatSalesforce(**salesforce(emulator))
    image = HumanMessage([{"type": "text", "text": "What is this?"},
                          {"type": "image", "base64": "iVBORw0KGgo=", "mime_type": "image/png"}])
    with pytest.raises(InvalidInputError, match="accepts system, human, AI and tool messages"):
        chat.invoke([image])
    with pytest.raises(InvalidInputError, match="model must not contain"):
        chat.invoke("hi", model="bad name")
    with pytest.raises(InvalidInputError, match="defaultLocale"):
        chat.invoke("hi", localization={"locale": "en_US"})
    db = ChatDatabricks(endpoint=CHAT_ENDPOINT, **databricks(emulator))
    with pytest.raises(ValueError, match="one of the bound tools"):
        db.bind_tools([get_weather], tool_choice="get_time")
    with pytest.raises(InvalidInputError, match="max_tokens must be a positive integer"):
        db.invoke("hi", max_tokens=0)
    counters = emulator.counters()["requests"]
    assert counters["salesforce.chat"] == 0 and counters["databricks.invocations"] == 0


def test_service_errors_are_clear(emulator: Emulator) -> None:
    with pytest.raises(NotFoundError) as info:
        ChatDatabricks(endpoint="no-such-endpoint", **databricks(emulator)).invoke("hi")
    assert info.value.status_code == 404 and "serving endpoint name" in str(info.value)
    with pytest.raises(NotFoundError, match="sfdc_ai__Nope"):
        ChatSalesforce(model="sfdc_ai__Nope", **salesforce(emulator)).invoke("hi")
    with pytest.raises(AuthenticationError) as auth:
        ChatSalesforce(api_key="not-a-token", api_base=emulator.salesforce_api_base,
                       max_retries=0).invoke("hi")
    assert "not-a-token" not in str(auth.value)


# -- feedback -------------------------------------------------------------------------------------
def _chat_chain(emulator: Emulator) -> Runnable[dict[str, str], AIMessage]:
    prompt = ChatPromptTemplate.from_messages([("system", "You help with CRM questions."),
                                               ("human", "{question}")])
    return prompt | ChatSalesforce(**salesforce(emulator))


def test_feedback_through_a_chain_invoke_batch_and_stream(emulator: Emulator) -> None:
    handler = SalesforceFeedbackHandler(api_key=emulator.mint_salesforce_token(),
                                        api_base=emulator.salesforce_api_base)
    chain = _chat_chain(emulator)

    run = uuid.uuid4()
    answer = chain.invoke({"question": "What is a lead?"},
                          config={"callbacks": [handler], "run_id": run})
    chain.invoke({"question": "Something else"}, config={"callbacks": [handler]})
    feedback_id = handler.submit("GOOD", run_id=run, text="Helpful").feedback_id
    stored = emulator.feedback()[-1]
    assert stored["id"] == feedback_id
    assert stored["generationId"] == answer.response_metadata["generation_id"]
    assert stored["feedback"] == "GOOD" and stored["feedbackText"] == "Helpful"

    runs = [uuid.uuid4(), uuid.uuid4()]
    answers = chain.batch([{"question": "One?"}, {"question": "Two?"}],
                          config=[{"callbacks": [handler], "run_id": r} for r in runs])
    for run_id, message in zip(runs, answers, strict=True):
        handler.submit("BAD", run_id=run_id)
        assert emulator.feedback()[-1]["generationId"] == \
            message.response_metadata["generation_id"]

    run = uuid.uuid4()
    chunks = list(chain.stream({"question": "Streamed?"},
                               config={"callbacks": [handler], "run_id": run}))
    handler.submit("GOOD", run_id=run)
    assert emulator.feedback()[-1]["generationId"] == \
        chunks[0].response_metadata["generation_id"]
    # No run id: the latest run.
    handler.submit("BAD")
    assert emulator.feedback()[-1]["generationId"] == \
        chunks[0].response_metadata["generation_id"]


async def test_feedback_async_and_for_text_generation(emulator: Emulator) -> None:
    handler = SalesforceFeedbackHandler(api_key=emulator.mint_salesforce_token(),
                                        api_base=emulator.salesforce_api_base)
    chain = _chat_chain(emulator)
    run = uuid.uuid4()
    answer = await chain.ainvoke({"question": "Async?"},
                                 config={"callbacks": [handler], "run_id": run})
    await handler.asubmit("GOOD", run_id=run)
    assert emulator.feedback()[-1]["generationId"] == answer.response_metadata["generation_id"]

    run = uuid.uuid4()
    chunks = [c async for c in chain.astream({"question": "Async stream?"},
                                             config={"callbacks": [handler], "run_id": run})]
    await handler.asubmit("BAD", run_id=run)
    assert emulator.feedback()[-1]["generationId"] == \
        chunks[0].response_metadata["generation_id"]

    llm = SalesforceLLM(**salesforce(emulator))
    text_chain = PromptTemplate.from_template("Write about {topic}") | llm | StrOutputParser()
    run = uuid.uuid4()
    text_chain.invoke({"topic": "accounts"}, config={"callbacks": [handler], "run_id": run})
    model_run = handler.find(run)
    await handler.asubmit("GOOD", run_id=run)
    assert emulator.feedback()[-1]["generationId"] == model_run.generation_ids[0]
    run = uuid.uuid4()
    "".join(text_chain.stream({"topic": "cases"}, config={"callbacks": [handler],
                                                          "run_id": run}))
    handler.submit("GOOD", run_id=run)
    assert emulator.feedback()[-1]["generationId"] == handler.find(run).generation_ids[0]
    assert len(emulator.feedback()) == 4
