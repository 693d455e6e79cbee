"""Fake services behind httpx.MockTransport, for tests that open no sockets."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import httpx

Handler = Callable[[httpx.Request], httpx.Response]


def make_jwt(exp: float | None = None, **claims: Any) -> str:
    def enc(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    payload = dict(claims)
    if exp is not None:
        payload["exp"] = int(exp)
    return f"{enc({'alg': 'RS256'})}.{enc(payload)}.c2lnbmF0dXJl"


def sf_token_body(token: str, *,
                  api_instance_url: str = "https://api.example.test") -> dict[str, Any]:
    return {"access_token": token, "signature": "sig", "token_format": "jwt",
            "scope": "sfap_api api", "instance_url": "https://acme.my.salesforce.com",
            "id": "https://login.salesforce.com/id/00D/005", "token_type": "Bearer",
            "issued_at": str(int(time.time() * 1000)), "api_instance_url": api_instance_url}


def sf_chat_body(text: str = "Hello!", generation_id: str = "gen-1") -> dict[str, Any]:
    return {"id": "chatcmpl-1", "generationDetails": {
        "generations": [{"id": generation_id, "role": "assistant", "content": text,
                         "timestamp": 1682536893,
                         "parameters": {"finish_reason": "stop", "index": 0, "logprobs": None},
                         "contentQuality": {"scanToxicity": {"isDetected": False, "categories": [
                             {"categoryName": "profanity", "score": 0.01}]}}}],
        "parameters": {"created": 1712258359, "model": "gpt-4o-mini-2024-07-18",
                       "object": "chat.completion", "system_fingerprint": None,
                       "usage": {"completion_tokens": 3, "prompt_tokens": 5,
                                 "total_tokens": 8}}}}


class Recorder:
    """A scripted fake service: answers with ``handler`` and records every request."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return self.handler(request)

    def paths(self) -> list[str]:
        return [r.url.path for r in self.requests]

    def transports(self) -> dict[str, Any]:
        async def ahandler(request: httpx.Request) -> httpx.Response:
            return self(request)

        return {"transport": httpx.MockTransport(self),
                "async_transport": httpx.MockTransport(ahandler)}
