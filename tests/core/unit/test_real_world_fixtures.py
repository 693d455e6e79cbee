"""Every real-world response in tests/fixtures/real_world, replayed through the core clients.

Each fixture's bytes answer the call its sidecar names; what the client reads must match the
sidecar's ``expect``. A new sample is one new pair of files: nothing here changes.
"""

from __future__ import annotations

import asyncio
from array import array
from typing import Any

import pytest

from sfmodels_core import DatabricksClient, SalesforceClient
from sfmodels_core import errors as error_module
from sfmodels_core.databricks import Completion
from sfmodels_core.errors import SFModelsError
from sfmodels_core.types import Usage
from tests.fixtures.real_world import Fixture, ids, load

FIXTURES = load()
MESSAGES = [{"role": "user", "content": "Hello"}]


def counts(usage: Usage | None) -> dict[str, int] | None:
    if usage is None:
        return None
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens}


def client(fixture: Fixture) -> DatabricksClient | SalesforceClient:
    transport = fixture.transport()
    if fixture.provider == "databricks":
        return DatabricksClient(host="https://adb-1.2.azuredatabricks.net", api_key="dapi-x",
                                env={}, transport=transport, async_transport=transport,
                                max_retries=0)
    return SalesforceClient(api_key="sf-token", api_base="https://api.example.com/v1", env={},
                            transport=transport, async_transport=transport, max_retries=0)


def stream_observation(chunks: list[Any]) -> dict[str, Any]:
    """What a caller reads from the core's stream: joined text and reasoning, the last finish
    reason, the usage (which must come at most once) and the tool-call deltas as they came."""
    text, reasoning, finish = "", None, None
    usages = [c.usage for c in chunks if c.usage is not None]
    ids_seen: list[str] = []
    names: list[str] = []
    arguments = ""
    for chunk in chunks:
        for choice in chunk.choices:
            if choice.index != 0:
                continue
            finish = choice.finish_reason or finish
            if isinstance(chunk, Completion):
                text += choice.text
                continue
            text += choice.content or ""
            if choice.reasoning is not None:
                reasoning = (reasoning or "") + choice.reasoning
            for delta in choice.tool_calls:
                if delta.id is not None and delta.id not in ids_seen:
                    ids_seen.append(delta.id)
                if delta.name:
                    names.append(delta.name)
                arguments += delta.arguments
    assert len(usages) <= 1, "usage must be reported once per stream"
    return {"text": text, "reasoning": reasoning, "finish_reason": finish,
            "usage": counts(usages[0]) if usages else None,
            "tool_call_ids": ids_seen, "tool_call_names": names, "arguments": arguments}


async def collect(stream: Any) -> list[Any]:
    return [chunk async for chunk in stream]


def observe(fixture: Fixture) -> dict[str, Any]:
    """Run the fixture's call through the core and report what a caller sees."""
    with client(fixture) as c:
        if isinstance(c, DatabricksClient):
            if fixture.method == "chat":
                result = c.chat("ep", MESSAGES)
                return {"text": result.text, "reasoning": result.choices[0].message.reasoning,
                        "finish_reason": result.finish_reason, "usage": counts(result.usage),
                        "tool_calls": [{"id": t.id, "name": t.name, "arguments": t.arguments}
                                       for t in result.tool_calls]}
            if fixture.method in ("stream_chat", "stream_complete"):
                sync_stream = (c.stream_chat("ep", MESSAGES) if fixture.method == "stream_chat"
                               else c.stream_complete("ep", "Once"))
                seen = stream_observation(list(sync_stream))
                async_stream = (c.astream_chat("ep", MESSAGES)
                                if fixture.method == "stream_chat"
                                else c.astream_complete("ep", "Once"))
                assert stream_observation(asyncio.run(collect(async_stream))) == seen
                return seen
            if fixture.method == "embed":
                texts = [f"text {i}" for i in range(fixture.meta.get("inputs", 1))]
                embedded = c.embed("ep", texts)
                compact = c.embed("ep", texts, compact=True)
                assert compact.vectors.tolist() == [array("f", v).tolist()
                                                    for v in embedded.vectors]
                return {"vectors": embedded.vectors, "usage": counts(embedded.usage)}
        else:
            if fixture.method in ("chat", "generate"):
                answer = (c.chat("sfdc_ai__DefaultGPT4Omni", MESSAGES)
                          if fixture.method == "chat"
                          else c.generate("sfdc_ai__DefaultGPT4Omni", "Once"))
                generation = answer.generations[0]
                quality = generation.content_quality
                return {"text": answer.text, "generation_id": answer.generation_id,
                        "finish_reason": answer.finish_reason, "provider": answer.provider,
                        "refusal": generation.refusal, "usage": counts(answer.usage),
                        "usage_extra": sorted(answer.usage.model_extra or {})
                        if answer.usage else [],
                        "scores": quality.scores if quality else None}
            if fixture.method == "feedback":
                stored = c.submit_feedback("gen-1", "GOOD", feedback_id="fb-1")
                assert (stored.feedback_id, stored.generation_id) == ("fb-1", "gen-1")
                assert stored.status_code == fixture.status
                return {"message": stored.message}
    raise AssertionError(f"{fixture.name}: no runner for call {fixture.call!r}")


def observe_error(fixture: Fixture) -> dict[str, Any]:
    with pytest.raises(SFModelsError) as info:
        observe(fixture)
    error = info.value
    return {"error": error, "status": error.status_code, "code": error.error_code,
            "message": error.provider_message, "request_id": error.request_id,
            "message_code": error.message_code,
            "retry_after": getattr(error, "retry_after", None)}


@pytest.mark.parametrize("fixture", FIXTURES, ids=ids(FIXTURES))
def test_core_reads_the_fixture(fixture: Fixture) -> None:
    expect = dict(fixture.expect)
    if "error" in expect:
        seen = observe_error(fixture)
        wanted = expect["error"]
        assert {k: seen[k] for k in wanted if k != "class"} == {
            k: v for k, v in wanted.items() if k != "class"}
        # of the class named (a bulk call's error is that class mixed with BulkEmbeddingError)
        assert isinstance(seen["error"], getattr(error_module, wanted["class"]))
        return
    seen = observe(fixture)
    calls = expect.pop("tool_calls", None)
    if calls is not None and "tool_call_ids" in seen:
        # Streamed: the deltas carry every call's id and name, and every argument fragment, in
        # order (assembling them into calls is the stream accumulator's job).
        assert seen["tool_call_ids"] == [c["id"] for c in calls]
        assert seen["tool_call_names"] == [c["name"] for c in calls]
        assert seen["arguments"] == "".join(c["arguments"] for c in calls)
    elif calls is not None:
        assert seen["tool_calls"] == calls
    for key, value in expect.items():
        assert seen[key] == value, key


def test_every_fixture_says_where_it_comes_from() -> None:
    assert len(FIXTURES) >= 20
    for fixture in FIXTURES:
        assert len(fixture.source) > 30, fixture.name
        assert fixture.provider in ("databricks", "salesforce"), fixture.name
