"""The core clients against each real-world shape the emulator can answer in (issue 12).

Every test switches a shape on (at run time, per endpoint or model, or by an endpoint's own
default) and checks what a caller of ``sfmodels_core`` gets.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from sfmodels_core import DatabricksClient, SalesforceClient
from sfmodels_core.errors import (
    BadRequestError,
    NotFoundError,
    RateLimitError,
    ServerError,
)
from sfmodels_emulator import Emulator
from sfmodels_emulator.catalogue import SALESFORCE_MODELS

CHAT = "sfdc_ai__DefaultOpenAIGPT4OmniMini"
ADA = "sfdc_ai__DefaultOpenAITextEmbeddingAda_002"
LLAMA = "databricks-meta-llama-3-3-70b-instruct"
GTE = "databricks-gte-large-en"
USER = [{"role": "user", "content": "Tell me about the rivers of Europe"}]
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}
TWO_CITIES = [{"role": "user", "content": "What is the weather in Paris and in Rome?"}]


def sf(emu: Emulator, **kwargs: Any) -> SalesforceClient:
    return SalesforceClient(domain=emu.salesforce_domain, client_id=emu.salesforce_client_id,
                            client_secret=emu.salesforce_client_secret, env={}, **kwargs)


def dbx(emu: Emulator, **kwargs: Any) -> DatabricksClient:
    return DatabricksClient(host=emu.databricks_host, api_key=emu.databricks_token, env={},
                            **kwargs)


def usages(chunks: list[Any]) -> list[dict[str, int]]:
    return [c.usage.model_dump(include={"prompt_tokens", "completion_tokens", "total_tokens"})
            for c in chunks if c.usage is not None]


def text_of(chunks: list[Any]) -> str:
    return "".join(c.text for c in chunks)


async def collect(stream: Any) -> list[Any]:
    return [chunk async for chunk in stream]


# -- case 1: streamed tool calls without index ----------------------------------------------------
@pytest.mark.parametrize("switch", ["configure", "endpoint default"])
def test_streamed_tool_calls_without_index_keep_each_call_apart(
        emulator: Emulator, switch: str) -> None:
    endpoint = LLAMA
    if switch == "configure":
        emulator.configure(tool_call_index=False)
    else:
        endpoint = "databricks-gemini-2-5-flash"  # answers without index unless told otherwise
    with dbx(emulator) as client:
        whole = client.chat(endpoint, TWO_CITIES, tools=[WEATHER])
        chunks = list(client.stream_chat(endpoint, TWO_CITIES, tools=[WEATHER]))
    deltas = [d for c in chunks for choice in c.choices for d in choice.tool_calls]
    assert len(whole.tool_calls) == 2
    # A delta with a new id starts each call; the deltas without an id continue the latest.
    starts = [i for i, d in enumerate(deltas) if d.id]
    assert len(starts) == 2 and len(set(deltas[i].id for i in starts)) == 2
    for call, begin, end in zip(whole.tool_calls, starts, [*starts[1:], len(deltas)],
                                strict=True):
        assert deltas[begin].name == call.name
        assert "".join(d.arguments for d in deltas[begin:end]) == call.arguments
        assert all(d.id is None and not d.name for d in deltas[begin + 1:end])


# -- case 2: stream: true answered with one JSON body ---------------------------------------------
@pytest.mark.parametrize("switch", ["configure", "endpoint default"])
def test_stream_answered_with_json_is_a_one_chunk_stream(emulator: Emulator, switch: str) -> None:
    endpoint = LLAMA
    if switch == "configure":
        emulator.configure_model(LLAMA, stream_format="json")
    else:
        endpoint = "custom-pyfunc-chat"
    with dbx(emulator) as client:
        whole = client.chat(endpoint, USER)
        chunks = list(client.stream_chat(endpoint, USER))
        achunks = asyncio.run(collect(client.astream_chat(endpoint, USER)))
        calls = list(client.stream_chat(endpoint, TWO_CITIES, tools=[WEATHER]))
        completion = client.complete(endpoint, "Once upon a time")
        pieces = list(client.stream_complete(endpoint, "Once upon a time"))
        apieces = asyncio.run(collect(client.astream_complete(endpoint, "Once upon a time")))
    for stream in (chunks, achunks):
        assert text_of(stream) == whole.text and whole.text
        assert [c.finish_reason for s in stream for c in s.choices] == ["stop"]
        assert usages(stream) == [whole.usage.model_dump(
            include={"prompt_tokens", "completion_tokens", "total_tokens"})]
    deltas = [d for c in calls for choice in c.choices for d in choice.tool_calls]
    assert [(d.index, d.name) for d in deltas] == [(0, "get_weather"), (1, "get_weather")]
    assert [c.finish_reason for s in calls for c in s.choices] == ["tool_calls"]
    for stream in (pieces, apieces):
        assert "".join(p.text for p in stream) == completion.text
        assert len(usages(stream)) == 1


# -- case 3: usage in every shape, asked for by default -------------------------------------------
@pytest.mark.parametrize("mode", ["every", "last", "none", "null_until_last", "final_chunk",
                                  "on_request"])
async def test_stream_usage_is_reported_once_in_every_shape(emulator: Emulator,
                                                           mode: str) -> None:
    emulator.configure(usage_mode=mode)
    async with dbx(emulator) as client:
        whole = await client.achat(LLAMA, USER)
        chunks = await collect(client.astream_chat(LLAMA, USER))
        pieces = await collect(client.astream_complete(LLAMA, "Tell me about rivers"))
    expected = whole.usage.model_dump(include={"prompt_tokens", "completion_tokens",
                                               "total_tokens"})
    if mode == "none":
        assert usages(chunks) == [] and usages(pieces) == []  # none, rather than zeros
    else:
        assert usages(chunks) == [expected]
        assert len(usages(pieces)) == 1
    assert text_of(chunks) == whole.text


@pytest.mark.parametrize("endpoint", ["openai-gpt-4o", LLAMA])
def test_external_model_usage_needs_stream_options(emulator: Emulator, endpoint: str) -> None:
    if endpoint == LLAMA:
        emulator.configure_model(LLAMA, usage_mode="on_request")
    with dbx(emulator) as client:
        asked = list(client.stream_chat(endpoint, USER))
        not_asked = list(client.stream_chat(endpoint, USER, stream_usage=False))
        whole = client.chat(endpoint, USER)
    assert usages(asked) == [whole.usage.model_dump(
        include={"prompt_tokens", "completion_tokens", "total_tokens"})]
    assert usages(not_asked) == []
    assert text_of(asked) == text_of(not_asked) == whole.text


# -- case 4: wrapped error bodies -----------------------------------------------------------------
@pytest.mark.parametrize(("shape", "code"), [
    ("plain", "TEMPORARILY_UNAVAILABLE"),
    ("external_model", "service_unavailable"),
    ("openai", "service_unavailable"),
    ("details", "TEMPORARILY_UNAVAILABLE"),
])
def test_wrapped_errors_give_the_inner_message_and_code(emulator: Emulator, shape: str,
                                                        code: str) -> None:
    emulator.configure(error_shape=shape, fault_next=1, fault_kinds=["503"])
    with dbx(emulator, max_retries=0) as client, pytest.raises(ServerError) as info:
        client.chat(LLAMA, USER)
    error = info.value
    assert error.status_code == 503
    assert error.provider_message == "The service is temporarily unavailable. Please retry."
    assert error.error_code == code
    assert error.request_id  # from the header (and, for "details", the body says the same)
    if shape == "details":
        assert error.body["details"][0]["request_id"] == error.request_id


def test_external_model_endpoint_wraps_its_errors(emulator: Emulator) -> None:
    with dbx(emulator, max_retries=0) as client, pytest.raises(BadRequestError) as info:
        client.chat("openai-gpt-4o", [{"role": "user", "content": "hi"}], temperature=5)
    assert info.value.error_code == "invalid_value"
    assert info.value.provider_message.startswith("Invalid request: 'temperature'")
    assert "external_model_provider" in info.value.body["message"]


# -- case 5: reasoning content parts --------------------------------------------------------------
@pytest.mark.parametrize("switch", ["configure", "endpoint default"])
def test_reasoning_stays_out_of_the_text(emulator: Emulator, switch: str) -> None:
    endpoint = LLAMA
    with dbx(emulator) as client:
        plain = client.chat(LLAMA, USER).text
    if switch == "configure":
        emulator.configure(reasoning=True)
    else:
        endpoint = "databricks-gpt-oss-20b"
    with dbx(emulator) as client:
        whole = client.chat(endpoint, USER)
        chunks = list(client.stream_chat(endpoint, USER))
    message = whole.choices[0].message
    assert message.content == plain
    assert message.reasoning and "rivers" in message.reasoning
    assert isinstance(whole.raw["choices"][0]["message"]["content"], list)
    assert text_of(chunks) == plain
    assert "".join(c.reasoning or "" for chunk in chunks for c in chunk.choices) == \
        message.reasoning


# -- case 6: a batch too large for the workspace answers 429 every time ---------------------------
def test_embedding_batch_over_the_429_limit_fails_every_time(emulator: Emulator) -> None:
    emulator.configure_model(GTE, embedding_max_inputs_429=15)
    texts = [f"passage {i}" for i in range(20)]
    # One request of 20 is refused with 429 every time, whatever the retries ...
    with dbx(emulator, max_retries=1) as client, pytest.raises(RateLimitError) as info:
        client._post("/serving-endpoints/" + GTE + "/invocations", {"input": texts},
                     lambda body: body)
    assert info.value.error_code == "REQUEST_LIMIT_EXCEEDED" and info.value.retry_after is None
    assert emulator.counters()["requests"]["databricks.invocations"] == 2  # the retry failed too
    # ... so a bulk embed splits the batch, keeps the smaller size, and finishes.
    with dbx(emulator, batch_size=20) as client:
        assert len(client.embed(GTE, texts).vectors) == 20
    # Separate from the batch-size limit, which is a 400 (which a bulk embed splits too).
    emulator.configure(embedding_max_batch=5)
    with dbx(emulator) as client, pytest.raises(BadRequestError):
        client._post("/serving-endpoints/" + GTE + "/invocations", {"input": texts[:10]},
                     lambda body: body)


# -- case 7: M2M tokens live one hour -------------------------------------------------------------
def test_databricks_m2m_token_lives_one_hour(emulator: Emulator) -> None:
    with DatabricksClient(host=emulator.databricks_host, env={},
                          client_id=emulator.databricks_client_id,
                          client_secret=emulator.databricks_client_secret) as client:
        client.chat(LLAMA, USER)
        token = client.auth.get_token()
    assert token.expires_at is not None
    assert 3590 <= token.expires_at - token.issued_at <= 3610
    with sf(emulator) as salesforce:
        salesforce.chat(CHAT, USER)
        sf_token = salesforce.auth.get_token()
    assert sf_token.expires_at is not None
    assert 1790 <= sf_token.expires_at - time.time() <= 1810


# -- case 8: fields beyond the spec ---------------------------------------------------------------
@pytest.mark.parametrize(("model", "categories"), [
    (CHAT, 7), ("sfdc_ai__DefaultBedrockAnthropicClaude45Sonnet", 6)])
def test_salesforce_extra_fields_are_readable(emulator: Emulator, model: str,
                                              categories: int) -> None:
    emulator.configure_model(model, extra_fields=True)
    with sf(emulator) as client:
        chat = client.chat(model, USER)
        gen = client.generate(model, "Write about the sea")
    for result in (chat, gen):
        assert result.provider == SALESFORCE_MODELS[model].provider
        assert result.usage is not None and result.usage.total_tokens > 0
        assert set(result.usage.model_extra or {}) == {"completion_tokens_details",
                                                      "prompt_tokens_details"}
        quality = result.generations[0].content_quality
        assert quality is not None and len(quality.scores) == categories
        assert result.generations[0].refusal is None
    raw = chat.raw["generationDetails"]["generations"][0]["contentQuality"]
    assert any(type(c["score"]) is int for c in raw["scanToxicity"]["categories"])


# -- case 9: 423 ServerBusy is retried ------------------------------------------------------------
def test_server_busy_423_is_retried_like_503(emulator: Emulator) -> None:
    emulator.configure(fault_next=2, fault_kinds=["423"])
    with sf(emulator) as client:
        assert client.chat(CHAT, USER).text
    assert emulator.counters()["requests"]["salesforce.chat"] == 3
    assert emulator.counters()["faults"]["423"] == 2
    emulator.configure(fault_next=1, fault_kinds=["423"])
    with sf(emulator, max_retries=0) as client, pytest.raises(ServerError) as info:
        client.chat(CHAT, USER)
    assert info.value.status_code == 423 and info.value.message_code == "E42301"


# -- case 10 and issue 15 point 3: feedback -------------------------------------------------------
@pytest.mark.parametrize("body", ["json", "empty", "text"])
def test_feedback_accepted_with_any_body_is_success_and_stored_once(
        emulator: Emulator, body: str) -> None:
    emulator.configure(feedback_body=body)
    with sf(emulator) as client:
        generation = client.chat(CHAT, USER).generation_id
        assert generation is not None
        first = client.submit_feedback(generation, "GOOD", feedback_id="fb-1")
        again = client.submit_feedback(generation, "GOOD", feedback_id="fb-1")  # a retry
    assert first.status_code == again.status_code == 202
    assert first.message == {"json": "Feedback received, Thank you!", "empty": None,
                             "text": "Accepted"}[body]
    assert [f["id"] for f in emulator.feedback()] == ["fb-1"]
    assert emulator.counters()["feedback_repeats"] == 1


async def test_feedback_retried_after_a_fault_is_stored_once(emulator: Emulator) -> None:
    # The first answer is lost after the service stored the feedback (a truncated body); the
    # client's retry stores nothing new.
    emulator.configure(fault_next=1, fault_kinds=["truncated"], feedback_body="empty")
    async with sf(emulator) as client:
        result = await client.asubmit_feedback("gen-1", "BAD", feedback_id="fb-9")
    assert result.feedback_id == "fb-9"
    assert [f["id"] for f in emulator.feedback()] == ["fb-9"]


# -- case 11: messageCode on the exception --------------------------------------------------------
def test_message_code_is_on_the_exception(emulator: Emulator) -> None:
    with sf(emulator) as client:
        with pytest.raises(NotFoundError) as missing:
            client.chat("sfdc_ai__NoSuchModel", USER)
        with pytest.raises(BadRequestError) as bad:
            client.chat(CHAT, USER, localization={"defaultLocale": "en_US",
                                                  "inputLocales": [{"locale": 7}]})
    assert missing.value.message_code == "E40401"
    assert bad.value.message_code == "E40001" and bad.value.error_code == "INVALID_INPUT"
    assert "message code E40001" in str(bad.value)


# -- case 13: the model catalogue -----------------------------------------------------------------
def test_every_catalogue_model_serves_its_kind(emulator: Emulator) -> None:
    with sf(emulator) as client:
        for name, model in SALESFORCE_MODELS.items():
            if model.kind == "chat":
                assert client.chat(name, USER).model == model.served_model, name
            else:
                assert len(client.embed(name, ["a text"]).vectors[0]) == 1536, name


def test_wrong_kind_of_model_is_the_real_400(emulator: Emulator) -> None:
    with sf(emulator) as client:
        with pytest.raises(BadRequestError, match="does not support text generation") as chat:
            client.chat(ADA, USER)
        with pytest.raises(BadRequestError, match="does not support embeddings") as embed:
            client.embed(CHAT, ["a text"])
    for info in (chat, embed):
        assert info.value.status_code == 400 and info.value.error_code == "INVALID_INPUT"


def test_configured_models_answer_by_their_own_api_name(emulator: Emulator) -> None:
    emulator.configure(configured_models={
        "Acme_Support_GPT4o": "sfdc_ai__DefaultGPT4Omni",
        "Acme_Embedder": "sfdc_ai__DefaultAzureOpenAITextEmbeddingAda_002"})
    with sf(emulator) as client:
        assert client.chat("Acme_Support_GPT4o", USER).model == "gpt-4o-2024-08-06"
        assert len(client.embed("Acme_Embedder", ["x"]).vectors) == 1
        with pytest.raises(NotFoundError):
            client.chat("Acme_Unknown", USER)


# -- case 14: documented rate limits --------------------------------------------------------------
@pytest.mark.parametrize("limit", ["rate_limit_rpm", "rate_limit_rph"])
def test_request_limits_per_model(emulator: Emulator, limit: str) -> None:
    emulator.configure_model(CHAT, **{limit: 2})
    with sf(emulator, max_retries=0) as client:
        client.chat(CHAT, USER)
        client.chat(CHAT, USER)
        with pytest.raises(RateLimitError) as info:
            client.chat(CHAT, USER)
        client.chat("sfdc_ai__DefaultGPT4Omni", USER)  # another model has its own window
    assert info.value.error_code == "LIMIT_EXCEEDED" and info.value.message_code == "E42901"
    assert info.value.retry_after is not None
    assert info.value.retry_after <= (60 if limit == "rate_limit_rpm" else 3600)


@pytest.mark.parametrize("limit", ["rate_limit_tpm", "rate_limit_tph"])
def test_token_limits_per_model(emulator: Emulator, limit: str) -> None:
    emulator.configure(**{limit: 5})  # fewer tokens than one answer
    with sf(emulator, max_retries=0) as client:
        client.chat(CHAT, USER)
        with pytest.raises(RateLimitError):
            client.chat(CHAT, USER)
    with dbx(emulator, max_retries=0) as client:
        client.chat(LLAMA, USER)
        with pytest.raises(RateLimitError):
            client.chat(LLAMA, USER)


def test_rate_limit_without_retry_after(emulator: Emulator) -> None:
    emulator.configure(rate_limit_rpm=1, rate_limit_retry_after=False)
    with sf(emulator, max_retries=0) as client:
        client.chat(CHAT, USER)
        with pytest.raises(RateLimitError) as info:
            client.chat(CHAT, USER)
    assert info.value.retry_after is None
    assert info.value.body["errorCode"] == "LIMIT_EXCEEDED"


# -- answers from a single short system message ---------------------------------------------------
def test_a_short_system_message_is_context(emulator: Emulator) -> None:
    messages = [{"role": "system", "content": "Paris is the capital of France."},
                {"role": "user", "content": "What is the capital of France?"}]
    with sf(emulator) as salesforce, dbx(emulator) as databricks:
        assert "Paris" in salesforce.chat(CHAT, messages).text
        assert "Paris" in databricks.chat(LLAMA, messages).text
