"""SalesforceClient: headers, bodies, parsing, batching and local validation."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from sfmodels_core import SalesforceClient
from sfmodels_core.errors import InvalidInputError, NotFoundError, RateLimitError

from .fakes import Recorder, make_jwt, sf_chat_body

TOKEN = make_jwt(exp=time.time() + 3600)


def handler(request: httpx.Request) -> httpx.Response:
    path = request.url.path
    if "Nope" in path:
        return httpx.Response(404, json={"errorCode": "NOT_FOUND", "messageCode": "E4",
                                         "message": "Resource not found"})
    if path.endswith("/chat-generations"):
        return httpx.Response(200, json=sf_chat_body("Paris."))
    if path.endswith("/generations"):
        return httpx.Response(200, json={
            "id": "gen-req", "generation": {
                "id": "g-1", "generatedText": "Once upon a time",
                "contentQuality": {"scanToxicity": {"isDetected": False, "categories": []}},
                "parameters": {"finish_reason": "stop", "index": 0, "logprobs": None}},
            "moreGenerations": None, "prompt": None,
            "parameters": {"model": "gpt-35-turbo", "usage": {
                "completion_tokens": 4, "prompt_tokens": 2, "total_tokens": 6}}})
    if path.endswith("/embeddings"):
        texts = json.loads(request.content)["input"]
        # Answer out of order: the client must put vectors back by index.
        items = [{"embedding": [float(len(t)), 1.0], "index": i} for i, t in enumerate(texts)]
        return httpx.Response(200, json={"embeddings": items[::-1], "parameters": {
            "usage": {"prompt_tokens": len(texts), "total_tokens": len(texts)},
            "model": "text-embedding-ada-002-v2", "object": "list"}})
    if path.endswith("/feedback"):
        return httpx.Response(202, json={"message": "Feedback received, Thank you!"})
    raise AssertionError(f"unexpected request {path}")


@pytest.fixture
def rec() -> Recorder:
    return Recorder(handler)


@pytest.fixture
def client(rec: Recorder) -> SalesforceClient:
    return SalesforceClient(api_key=TOKEN, env={}, batch_size=3, **rec.transports())


def test_chat_sends_required_headers_and_parses_everything(
        client: SalesforceClient, rec: Recorder) -> None:
    result = client.chat("sfdc_ai__DefaultGPT4Omni", [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital?"}],
        localization={"defaultLocale": "en_US"}, tags={"app": "t"})
    request = rec.requests[0]
    assert str(request.url) == ("https://api.salesforce.com/einstein/platform/v1/models/"
                                "sfdc_ai__DefaultGPT4Omni/chat-generations")
    assert request.headers["x-sfdc-app-context"] == "EinsteinGPT"
    assert request.headers["x-client-feature-id"] == "ai-platform-models-connected-app"
    assert request.headers["content-type"] == "application/json;charset=utf-8"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert json.loads(request.content) == {
        "messages": [{"role": "system", "content": "Be brief."},
                     {"role": "user", "content": "Capital?"}],
        "localization": {"defaultLocale": "en_US"}, "tags": {"app": "t"}}
    assert (result.id, result.text, result.generation_id, result.finish_reason) == (
        "chatcmpl-1", "Paris.", "gen-1", "stop")
    assert result.model == "gpt-4o-mini-2024-07-18"
    assert result.usage is not None and result.usage.total_tokens == 8
    quality = result.generations[0].content_quality
    assert quality is not None and quality.scores == {"profanity": 0.01}
    assert result.raw["generationDetails"]["generations"][0]["id"] == "gen-1"


async def test_generate_and_async_twin(client: SalesforceClient) -> None:
    sync = client.generate("sfdc_ai__DefaultGPT4Omni", "Tell a story")
    asyn = await client.agenerate("sfdc_ai__DefaultGPT4Omni", "Tell a story")
    for result in (sync, asyn):
        assert (result.text, result.generation_id, result.model) == (
            "Once upon a time", "g-1", "gpt-35-turbo")


@pytest.mark.parametrize("use_async", [False, True])
async def test_embed_batches_and_keeps_order(client: SalesforceClient, rec: Recorder,
                                             use_async: bool) -> None:
    texts = ["a" * n for n in range(1, 11)]
    model = "sfdc_ai__DefaultOpenAITextEmbeddingAda_002"
    result = await client.aembed(model, texts) if use_async else client.embed(model, texts)
    assert [v[0] for v in result.vectors] == [float(n) for n in range(1, 11)]
    assert sorted(len(json.loads(r.content)["input"]) for r in rec.requests) == [1, 3, 3, 3]
    assert result.usage is not None and result.usage.total_tokens == 10
    assert result.model == "text-embedding-ada-002-v2"


def test_embed_of_nothing_sends_nothing(client: SalesforceClient, rec: Recorder) -> None:
    assert client.embed("sfdc_ai__DefaultOpenAITextEmbeddingAda_002", []).vectors == []
    assert rec.requests == []


def test_feedback_body_and_result(client: SalesforceClient, rec: Recorder) -> None:
    result = client.submit_feedback("gen-1", "good", text="helpful", source="human",
                                    app_feedback={"stars": 5})
    body = json.loads(rec.requests[0].content)
    assert body == {"id": result.feedback_id, "generationId": "gen-1", "feedback": "GOOD",
                    "feedbackText": "helpful", "source": "human", "appFeedback": {"stars": 5}}
    assert result.message == "Feedback received, Thank you!"
    assert rec.requests[0].url.path == "/einstein/platform/v1/feedback"


@pytest.mark.parametrize("call, match", [
    (lambda c: c.chat("", [{"role": "user", "content": "x"}]), "model must not be empty"),
    (lambda c: c.chat(None, [{"role": "user", "content": "x"}]), "model must be a string"),
    (lambda c: c.chat("m", [{"role": "tool", "content": "x"}]), "role 'tool'"),
    (lambda c: c.chat("m", [{"role": "user", "content": ["x"]}]), "content must be a string"),
    (lambda c: c.chat("m", []), "must not be empty"),
    (lambda c: c.chat("m", "hello"), "list of"),
    (lambda c: c.generate("m", None), "prompt must be a string"),
    (lambda c: c.embed("m", "one text"), "not a single string"),
    (lambda c: c.embed("m", ["ok", 3]), r"texts\[1\] must be a string"),
    (lambda c: c.chat("m", [{"role": "user", "content": "x"}], localization={"x": 1}),
     "defaultLocale"),
    (lambda c: c.submit_feedback("g", "great"), "GOOD"),
    (lambda c: c.submit_feedback("", "GOOD"), "generation_id"),
])
def test_bad_input_fails_before_sending(client: SalesforceClient, rec: Recorder, call,
                                        match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        call(client)
    assert rec.requests == []


def test_unknown_model_is_not_found_with_hint(client: SalesforceClient) -> None:
    with pytest.raises(NotFoundError) as info:
        client.chat("sfdc_ai__Nope", [{"role": "user", "content": "x"}])
    assert info.value.error_code == "NOT_FOUND"
    assert "model API name" in str(info.value)


def test_rate_limit_body_maps_to_rate_limit_error(sleeps: list[float]) -> None:
    rec = Recorder(lambda r: httpx.Response(429, json={
        "errorCode": "LIMIT_EXCEEDED", "messageCode": "E429", "message": "Too many requests"}))
    client = SalesforceClient(api_key=TOKEN, env={}, max_retries=1, **rec.transports())
    with pytest.raises(RateLimitError, match="Too many requests"):
        client.chat("m", [{"role": "user", "content": "x"}])
    assert len(rec.requests) == 2


def test_api_base_setting_wins(rec: Recorder) -> None:
    client = SalesforceClient(api_key=TOKEN, api_base="http://127.0.0.1:9/einstein/platform/v1/",
                              env={}, **rec.transports())
    client.chat("m", [{"role": "user", "content": "x"}])
    assert str(rec.requests[0].url).startswith("http://127.0.0.1:9/einstein/platform/v1/models/m/")
