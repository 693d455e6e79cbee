"""Scripted fake services behind ``httpx.MockTransport``: unit tests open no sockets."""

from __future__ import annotations

import json
from typing import Any

import httpx

from sfmodels_core import DatabricksClient, SalesforceClient

SF_BASE = "https://api.example.test/einstein/platform/v1"
DB_HOST = "https://workspace.example.test"


class FakeService:
    """Answers every request with the next scripted reply (or ``default``) and records it."""

    def __init__(self, default: Any = None) -> None:
        self.requests: list[httpx.Request] = []
        self.replies: list[Any] = []
        self.default = default

    def bodies(self) -> list[Any]:
        return [json.loads(r.content) if r.content else None for r in self.requests]

    def reply(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        answer = self.replies.pop(0) if self.replies else self.default
        if callable(answer):
            answer = answer(request)
        if isinstance(answer, httpx.Response):
            return answer
        return httpx.Response(200, json=answer)

    async def areply(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        return self.reply(request)

    def transports(self) -> dict[str, Any]:
        return {"transport": httpx.MockTransport(self.reply),
                "async_transport": httpx.MockTransport(self.areply)}


def salesforce_client(service: FakeService, **options: Any) -> SalesforceClient:
    return SalesforceClient(api_key="test-token", api_base=SF_BASE, max_retries=0,
                            **service.transports(), **options)


def databricks_client(service: FakeService, **options: Any) -> DatabricksClient:
    return DatabricksClient(host=DB_HOST, api_key="dapi-test", max_retries=0,
                            **service.transports(), **options)


def sf_chat(text: str = "Hello there. How can I help?", generation_id: str = "gen-1",
            response_id: str = "chatcmpl-1") -> dict[str, Any]:
    return {"id": response_id, "generationDetails": {
        "generations": [{"id": generation_id, "role": "assistant", "content": text,
                         "parameters": {"finish_reason": "stop", "index": 0},
                         "contentQuality": {"scanToxicity": {"isDetected": False,
                                                             "categories": []}}}],
        "parameters": {"model": "gpt-4o-mini", "usage": {"prompt_tokens": 5,
                                                         "completion_tokens": 7,
                                                         "total_tokens": 12}}}}


def sf_generation(text: str = "Once upon a time.", generation_id: str = "gen-t") -> dict[str, Any]:
    return {"id": "chatcmpl-t", "generation": {
        "id": generation_id, "generatedText": text,
        "parameters": {"finish_reason": "stop", "index": 0}},
        "parameters": {"model": "gpt-4o-mini", "usage": {"prompt_tokens": 2,
                                                         "completion_tokens": 4,
                                                         "total_tokens": 6}}}


def sf_embeddings(request: httpx.Request) -> dict[str, Any]:
    texts = json.loads(request.content)["input"]
    return {"embeddings": [{"embedding": [float(len(t)), 1.0], "index": i}
                           for i, t in enumerate(texts)],
            "parameters": {"model": "ada", "usage": {"prompt_tokens": len(texts),
                                                     "total_tokens": len(texts)}}}


def db_chat(text: str = "Hi!", **message: Any) -> dict[str, Any]:
    return {"id": "chatcmpl_1", "model": "served-model", "choices": [
        {"index": 0, "finish_reason": "stop",
         "message": {"role": "assistant", "content": text, **message}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}


def db_embeddings(request: httpx.Request) -> dict[str, Any]:
    texts = json.loads(request.content)["input"]
    return {"object": "list", "model": "gte", "data": [
        {"object": "embedding", "index": i, "embedding": [float(len(t)), 0.5]}
        for i, t in enumerate(texts)], "usage": {"prompt_tokens": 1, "total_tokens": 1}}


def sse(*events: dict[str, Any]) -> httpx.Response:
    body = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
    return httpx.Response(200, content=body.encode(),
                          headers={"content-type": "text/event-stream"})


def chat_stream(pieces: list[str], *, usage_every: bool = True) -> httpx.Response:
    """A chat stream with cumulative usage on every chunk, as some endpoints send it."""
    events = []
    for i, piece in enumerate(pieces):
        event: dict[str, Any] = {"id": "s-1", "model": "served-model", "choices": [
            {"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
        if usage_every:
            event["usage"] = {"prompt_tokens": 4, "completion_tokens": i + 1,
                              "total_tokens": 5 + i}
        events.append(event)
    last: dict[str, Any] = {"id": "s-1", "choices": [
        {"index": 0, "delta": {}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 4, "completion_tokens": len(pieces),
                  "total_tokens": 4 + len(pieces)}}
    return sse(*events, last)
