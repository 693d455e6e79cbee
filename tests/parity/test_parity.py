"""The same behaviours through LangChain, LlamaIndex and Spark, with the same outcome.

Each test runs once per framework (the ``fw`` fixture), through a small driver that speaks the
framework's own API; the assertions are written once. Where Spark does the same (reading a
rating, reading a Salesforce answer), its pure row functions (no Spark session) are held to the
same cases. What the front ends must agree on lives once in ``sfmodels_core.integration``; this
module pins that they do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from sfmodels_core.databricks import DatabricksClient
from sfmodels_core.errors import InvalidInputError
from sfmodels_core.integration.feedback import FeedbackSubmission
from sfmodels_core.salesforce import SalesforceClient

# No host may be reached (event loops may still make their internal socket pair).
pytestmark = pytest.mark.allow_hosts([])

TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}
BOTH = ('{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}, '
        '{"name": "get_weather", "arguments": {"city": "Oslo"}}]}')
ONE = '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}'


class Salesforce:
    """A Models API that answers chat with the given texts in turn, and stores feedback.

    Chat request n answers with generation id ``gen-n`` and usage (10 prompt, n completion)."""

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.chats: list[dict[str, Any]] = []
        self.feedback: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.read())
        if request.url.path.endswith("/feedback"):
            self.feedback.append(body)
            return httpx.Response(202, json={"message": "Feedback received"})
        self.chats.append(body)
        n = len(self.chats)
        return httpx.Response(200, json={"id": f"chat-{n}", "generationDetails": {
            "generations": [{"id": f"gen-{n}", "role": "assistant",
                             "content": self.replies.pop(0),
                             "parameters": {"finish_reason": "stop", "index": 0}}],
            "parameters": {"model": "m", "usage": {"prompt_tokens": 10, "completion_tokens": n,
                                                   "total_tokens": 10 + n}}}})

    def client(self) -> SalesforceClient:
        return SalesforceClient(api_key="t", api_base="https://sf.example/v1", max_retries=0,
                                transport=httpx.MockTransport(self),
                                async_transport=httpx.MockTransport(self))


def databricks_stream(*events: dict[str, Any]) -> DatabricksClient:
    text = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=text.encode(),
                              headers={"content-type": "text/event-stream"})

    return DatabricksClient(host="https://db.example", api_key="t", max_retries=0,
                            transport=httpx.MockTransport(answer))


@dataclass
class Answer:
    text: str
    finish_reason: str | None
    generation_ids: list[str]
    tool_calls: list[dict[str, Any]]  # valid calls: {"name", "args"}
    problems: list[str]
    input_tokens: int | None
    output_tokens: int | None


class LangChain:
    name = "langchain"

    def __init__(self) -> None:
        import langchain_sfmodels

        self.package = langchain_sfmodels

    def classes(self, *, host: str = "https://db.example", api_base: str | None = None,
                **settings: Any) -> list[Any]:
        from langchain_sfmodels import (
            ChatDatabricks,
            ChatSalesforce,
            DatabricksEmbeddings,
            DatabricksLLM,
            SalesforceEmbeddings,
            SalesforceFeedbackHandler,
            SalesforceLLM,
        )

        sf = {k: settings[k] for k in ("timeout", "max_retries", "requests_per_minute",
                                       "async_http", "allow_insecure_http")
              if k in settings}
        base = {"api_base": api_base} if api_base else {}
        handler = {k: v for k, v in sf.items() if k != "async_http"}
        return [ChatSalesforce(api_key="t", **base, **sf),
                SalesforceLLM(api_key="t", **base, **sf),
                SalesforceEmbeddings(api_key="t", **base, **sf),
                ChatDatabricks(endpoint="e", host=host, api_key="t", **sf),
                DatabricksLLM(endpoint="e", host=host, api_key="t", **sf),
                DatabricksEmbeddings(endpoint="e", host=host, api_key="t", **sf),
                *([SalesforceFeedbackHandler(api_key="t", **base, **handler)]
                  if "allow_insecure_http" in sf else [])]

    def salesforce(self, client: SalesforceClient, **settings: Any) -> Any:
        from langchain_sfmodels import ChatSalesforce

        return ChatSalesforce(client=client, **settings)

    def ask(self, model: Any, text: str | list[Any], *, tools: bool = False,
            parallel: bool = True, handler: Any = None) -> Answer:
        bound = model.bind_tools([TOOL], parallel_tool_calls=parallel) if tools else model
        config = {"callbacks": [handler]} if handler is not None else None
        message = bound.invoke(text, config=config)
        meta = message.response_metadata
        usage = message.usage_metadata or {}
        return Answer(message.text, meta.get("finish_reason"),
                      meta.get("generation_ids") or [meta["generation_id"]],
                      [{"name": c["name"], "args": c["args"]} for c in message.tool_calls],
                      [str(c.get("error")) for c in message.invalid_tool_calls],
                      usage.get("input_tokens"), usage.get("output_tokens"))

    def image(self) -> Any:
        from langchain_core.messages import HumanMessage

        return [HumanMessage([{"type": "text", "text": "What is this?"},
                              {"type": "image_url", "image_url": {"url": "https://x/a.png"}}])]

    def feedback_handler(self, client: SalesforceClient) -> Any:
        from langchain_sfmodels import SalesforceFeedbackHandler

        return SalesforceFeedbackHandler(client=client)

    def rate(self, handler: Any, rating: Any) -> Any:
        return handler.submit(rating)  # the latest run

    def stream_usage(self, client: DatabricksClient) -> tuple[str, int | None]:
        from langchain_sfmodels import ChatDatabricks

        chunks = list(ChatDatabricks(endpoint="e", client=client).stream("hi"))
        total = chunks[0]
        for chunk in chunks[1:]:
            total += chunk
        usage = total.usage_metadata or {}
        return total.text, usage.get("output_tokens")


class LlamaIndex:
    name = "llama_index"

    def __init__(self) -> None:
        import llama_index_sfmodels

        self.package = llama_index_sfmodels

    def classes(self, *, host: str = "https://db.example", api_base: str | None = None,
                **settings: Any) -> list[Any]:
        from llama_index_sfmodels import (
            DatabricksEmbedding,
            DatabricksLLM,
            SalesforceEmbedding,
            SalesforceFeedbackHandler,
            SalesforceLLM,
        )

        base = {"api_base": api_base} if api_base else {}
        return [SalesforceLLM(api_key="t", **base, **settings),
                SalesforceEmbedding(api_key="t", **base, **settings),
                DatabricksLLM(endpoint="e", host=host, api_key="t", **settings),
                DatabricksEmbedding(endpoint="e", host=host, api_key="t", **settings),
                *([SalesforceFeedbackHandler(api_key="t", **base, **settings)]
                  if "allow_insecure_http" in settings else [])]

    def salesforce(self, client: SalesforceClient, **settings: Any) -> Any:
        from llama_index_sfmodels import SalesforceLLM

        return SalesforceLLM(client=client, **settings)

    def ask(self, model: Any, text: str | list[Any], *, tools: bool = False,
            parallel: bool = True, handler: Any = None) -> Answer:
        from llama_index.core.base.llms.types import ChatMessage

        messages = [ChatMessage(role="user", content=text)] if isinstance(text, str) else text
        if tools:
            response = model.chat(messages, tools=[TOOL], parallel_tool_calls=parallel)
        else:
            response = model.chat(messages)
        extra = response.additional_kwargs
        try:
            calls = [{"name": c.tool_name, "args": c.tool_kwargs}
                     for c in model.get_tool_calls_from_response(
                         response, error_on_no_tool_call=False)] if tools else []
        except ValueError:
            calls = []
        return Answer(response.message.content or "", extra.get("finish_reason"),
                      extra.get("generation_ids") or [extra["generation_id"]], calls,
                      list(extra.get("protocol_errors") or []), extra.get("prompt_tokens"),
                      extra.get("completion_tokens"))

    def image(self) -> Any:
        from llama_index.core.base.llms.types import ChatMessage, ImageBlock, TextBlock

        return [ChatMessage(role="user", blocks=[TextBlock(text="What is this?"),
                                                  ImageBlock(url="https://x/a.png")])]

    def feedback_handler(self, client: SalesforceClient) -> Any:
        from llama_index_sfmodels import SalesforceFeedbackHandler

        return SalesforceFeedbackHandler(client=client).register()

    def rate(self, handler: Any, rating: Any) -> Any:
        return handler.submit(rating)  # the latest run

    def stream_usage(self, client: DatabricksClient) -> tuple[str, int | None]:
        from llama_index.core.base.llms.types import ChatMessage

        from llama_index_sfmodels import DatabricksLLM

        responses = list(DatabricksLLM(endpoint="e", client=client).stream_chat(
            [ChatMessage(role="user", content="hi")]))
        counted = [r.additional_kwargs.get("completion_tokens") for r in responses
                   if r.additional_kwargs.get("completion_tokens") is not None]
        return responses[-1].message.content or "", sum(counted) if counted else None


@pytest.fixture(params=[LangChain, LlamaIndex], ids=lambda d: d.name)
def fw(request: pytest.FixtureRequest) -> Any:
    driver = request.param()
    yield driver
    if driver.name == "llama_index":
        from llama_index_instrumentation import get_dispatcher

        dispatcher = get_dispatcher()
        dispatcher.event_handlers = [h for h in dispatcher.event_handlers
                                     if type(h).__name__ != "SalesforceFeedbackHandler"]
        dispatcher.span_handlers = [h for h in dispatcher.span_handlers
                                    if type(h).__name__ != "_SpanLinks"]


# -- the table ------------------------------------------------------------------------------------
def test_exported_error_types(fw: Any) -> None:
    from sfmodels_core import errors

    assert fw.package.SFModelsError is errors.SFModelsError
    assert fw.package.ModelReplyError is errors.ModelReplyError
    assert fw.package.FeedbackSubmission is FeedbackSubmission


@pytest.mark.parametrize("settings, expected", [
    ({}, (60.0, 3, None, "httpx")),
    ({"timeout": 5.0, "max_retries": 0, "requests_per_minute": 600, "async_http": "aiohttp"},
     (5.0, 0, 600, "aiohttp")),
])
def test_timeout_retries_and_rate_reach_every_client(fw: Any, settings: dict[str, Any],
                                                     expected: tuple[Any, ...]) -> None:
    for component in fw.classes(**settings):
        options = component.client.options
        assert (options.timeout, options.max_retries, options.requests_per_minute,
                options.async_http) == expected
        assert component.client._transport.limiter is None or expected[2] == 600


@pytest.mark.parametrize("bad", [{"timeout": 0}, {"max_retries": -1},
                                 {"requests_per_minute": 0}, {"async_http": "curl"}])
def test_bad_settings_are_refused_at_construction(fw: Any, bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        fw.classes(**bad)


def test_plain_http_to_another_host_needs_allow_insecure_http(fw: Any) -> None:
    import warnings

    from sfmodels_core.errors import ConfigurationError

    insecure = {"host": f"http://{fw.name}.parity.example",
                "api_base": f"http://{fw.name}.parity.example/v1"}
    for component in fw.classes(**insecure):
        with pytest.raises(ConfigurationError, match="plain http://"):
            component.client  # noqa: B018 - the client is made on first use
    for component in fw.classes(**insecure, allow_insecure_http=False):
        with pytest.raises(ConfigurationError, match="allow_insecure_http=True"):
            component.client  # noqa: B018
    with pytest.warns(UserWarning, match=f"{fw.name}.parity.example over plain http"):
        components = fw.classes(**insecure, allow_insecure_http=True)
        for component in components:
            assert component.client.allow_insecure_http is True
    for component in fw.classes(host="http://127.0.0.1:9", api_base="http://localhost:9/v1"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert component.client.allow_insecure_http is False
    for bad in ("127.0.0.1@evil.example", "https://user:pw@db.example"):
        for component in fw.classes(host=bad, api_base=bad, allow_insecure_http=True):
            with pytest.raises(ConfigurationError, match="user-info part"):
                component.client  # noqa: B018
    with pytest.raises(ValueError, match="allow_insecure_http would be ignored"):
        fw.salesforce(Salesforce().client(), allow_insecure_http=True)


async def test_close_aclose_and_context_managers(fw: Any) -> None:
    handler = fw.feedback_handler(Salesforce().client())
    with handler as entered:  # the handler closes only a client it created; here, none
        assert entered is handler
    async with handler:
        pass
    for component in fw.classes():
        first = component.client
        component.close()
        assert component.client is not first  # closed: a new client on the next use
        second = component.client
        await component.aclose()
        assert component.client is not second
        with component as entered:
            assert entered is component
            third = component.client
        assert component.client is not third
        async with component:
            pass


def test_parallel_tool_calls_false_is_repaired_not_trimmed(fw: Any) -> None:
    service = Salesforce(BOTH, ONE, BOTH, BOTH)
    model = fw.salesforce(service.client())
    repaired = fw.ask(model, "Weather in Paris and Oslo?", tools=True, parallel=False)
    assert repaired.tool_calls == [{"name": "get_weather", "args": {"city": "Paris"}}]
    assert repaired.generation_ids == ["gen-1", "gen-2"]
    failed = fw.ask(model, "Weather in Paris and Oslo?", tools=True, parallel=False)
    assert failed.tool_calls == []  # never the first call kept silently
    assert any("at most one tool" in p for p in failed.problems)


def test_usage_is_summed_over_a_repair_round(fw: Any) -> None:
    service = Salesforce(BOTH, ONE)
    answer = fw.ask(fw.salesforce(service.client()), "Weather?", tools=True, parallel=False)
    assert (answer.input_tokens, answer.output_tokens) == (20, 3)


def test_stop_sequences_are_applied_on_the_client(fw: Any) -> None:
    service = Salesforce("It is sunny. Anything else?")
    answer = fw.ask(fw.salesforce(service.client(), stop=[" Anything"]), "Weather?")
    assert (answer.text, answer.finish_reason) == ("It is sunny.", "stop")
    assert "stop" not in service.chats[0]  # the Models API has no stop field


def test_images_are_refused_on_salesforce_before_sending(fw: Any) -> None:
    service = Salesforce("never")
    with pytest.raises(InvalidInputError, match=r"image|Image"):
        fw.ask(fw.salesforce(service.client()), fw.image())
    assert service.chats == []


#: Ratings every front end reads, and what it stores; ratings every front end refuses.
RATINGS = [("GOOD", "GOOD"), ("bad", "BAD"), ("Good", "GOOD")]
BAD_RATINGS = ["MEH", "", 1]


@pytest.mark.parametrize("rating, stored", RATINGS)
def test_feedback_rates_every_generation_of_the_answer(fw: Any, rating: str,
                                                       stored: str) -> None:
    service = Salesforce(BOTH, ONE)
    client = service.client()
    handler = fw.feedback_handler(client)
    fw.ask(fw.salesforce(client), "Weather?", tools=True, parallel=False, handler=handler)
    submission = fw.rate(handler, rating)
    assert isinstance(submission, FeedbackSubmission)
    assert submission.generation_ids == ["gen-2", "gen-1"]  # the answering one first
    assert submission.feedback_ids == [f["id"] for f in service.feedback]
    assert [f["feedback"] for f in service.feedback] == [stored, stored]


@pytest.mark.parametrize("rating", BAD_RATINGS)
def test_feedback_refuses_the_same_bad_ratings(fw: Any, rating: Any) -> None:
    service = Salesforce("hi")
    client = service.client()
    handler = fw.feedback_handler(client)
    fw.ask(fw.salesforce(client), "Hello", handler=handler)
    with pytest.raises(InvalidInputError, match="'GOOD' or 'BAD'"):
        fw.rate(handler, rating)
    assert service.feedback == []


def test_databricks_stream_usage_is_counted_once(fw: Any) -> None:
    usage = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
    client = databricks_stream(
        {"id": "x", "choices": [{"index": 0, "delta": {"content": "Hel"}}], "usage": usage},
        {"id": "x", "choices": [{"index": 0, "delta": {"content": "lo"},
                                 "finish_reason": "stop"}], "usage": usage})
    assert fw.stream_usage(client) == ("Hello", 2)


def test_copies_validate_like_construction(fw: Any) -> None:
    for component in fw.classes():
        copied = component.model_copy(update={"client_secret": "fresh-secret-value"})
        assert "fresh-secret-value" not in repr(copied)
        assert copied.client_secret.get_secret_value() == "fresh-secret-value"
        with pytest.raises(ValueError, match="no setting"):
            component.model_copy(update={"not_a_setting": 1})
        with pytest.raises(ValueError):
            component.model_copy(update={"timeout": -1})
    databricks = [c for c in fw.classes() if hasattr(c, "host")]
    for component in databricks:
        moved = component.model_copy(update={"token": "new-token", "host": "https://other.example"})
        assert moved.client.host == "https://other.example"
        assert moved.api_key.get_secret_value() == "new-token"
        assert component.client.host == "https://db.example"  # the original is untouched
    chats = [c for c in databricks if getattr(c, "endpoint", None) == "e"]
    for component in chats:
        assert component.model_copy(update={"endpoint": "other"}).endpoint == "other"


# -- Spark: its row functions, held to the same cases ---------------------------------------------
CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


@pytest.mark.parametrize("rating, stored", RATINGS)
def test_spark_reads_a_rating_as_the_handlers_do(rating: str, stored: str) -> None:
    from sfmodels_core.integration.batch import rows

    assert rows.rating_value(rating) == stored


@pytest.mark.parametrize("rating", BAD_RATINGS)
def test_spark_refuses_the_same_bad_ratings(rating: Any) -> None:
    from sfmodels_core.integration.batch import rows

    with pytest.raises(InvalidInputError, match="'GOOD', 'BAD'"):
        rows.rating_value(rating)


def test_spark_reads_a_salesforce_answer_as_the_frameworks_do(fw: Any) -> None:
    from sfmodels_core.integration.batch import rows

    answer = fw.ask(fw.salesforce(Salesforce("It is sunny.").client()), "Weather?")
    row = rows.chat_one(Salesforce("It is sunny.").client(), rows.ChatSpec("m"), "Weather?")
    assert row.error is None and row.usage is not None
    assert (row.text, row.finish_reason, [row.generation_id],
            row.usage.prompt_tokens, row.usage.completion_tokens) == (
        answer.text, answer.finish_reason, answer.generation_ids,
        answer.input_tokens, answer.output_tokens)


def test_spark_sums_usage_over_a_repair_round_as_the_frameworks_do(fw: Any) -> None:
    from sfmodels_core.integration.batch import rows

    answer = fw.ask(fw.salesforce(Salesforce(BOTH, ONE).client()), "Weather?", tools=True,
                    parallel=False)
    service = Salesforce("No JSON here.", '{"city": "Paris"}')
    row = rows.chat_one(service.client(), rows.ChatSpec("m", schema=CITY), "Weather?")
    assert (row.error, row.text, row.generation_id) == (None, '{"city": "Paris"}', "gen-2")
    assert row.usage is not None and len(service.chats) == 2
    assert (row.usage.prompt_tokens, row.usage.completion_tokens) == (
        answer.input_tokens, answer.output_tokens) == (20, 3)
