"""Small structural checks of JSON bodies against the documented wire shapes."""

from __future__ import annotations

from typing import Any

NULL = type(None)
NUMBER = (int, float)


class Optional:
    """Marks a key that may be absent."""

    def __init__(self, shape: Any) -> None:
        self.shape = shape


def assert_shape(value: Any, shape: Any, path: str = "$", *, exact: bool = True) -> None:
    """Check ``value`` against ``shape``.

    ``shape`` is a type or tuple of types, a dict of key -> shape (every non-Optional key
    required; with ``exact`` no other keys allowed), or a one-item list whose item is the shape of
    every element.
    """
    if isinstance(shape, dict):
        assert isinstance(value, dict), f"{path}: expected an object, got {value!r}"
        for key, sub in shape.items():
            if isinstance(sub, Optional):
                if key in value:
                    assert_shape(value[key], sub.shape, f"{path}.{key}", exact=exact)
                continue
            assert key in value, f"{path}: missing key {key!r} in {sorted(value)}"
            assert_shape(value[key], sub, f"{path}.{key}", exact=exact)
        if exact:
            extra = set(value) - set(shape)
            assert not extra, f"{path}: unexpected keys {sorted(extra)}"
    elif isinstance(shape, list):
        assert isinstance(value, list), f"{path}: expected an array, got {value!r}"
        for i, item in enumerate(value):
            assert_shape(item, shape[0], f"{path}[{i}]", exact=exact)
    else:
        if shape in (int, NUMBER) or (isinstance(shape, tuple) and int in shape):
            assert not isinstance(value, bool), f"{path}: expected a number, got a boolean"
        assert isinstance(value, shape), f"{path}: expected {shape}, got {value!r}"


SALESFORCE_ERROR = {
    "errorCode": str,
    "messageCode": str,
    "message": str,
    "targets": Optional([{"type": str, "reference": str}]),
}
DATABRICKS_ERROR = {"error_code": str, "message": str}
OAUTH_ERROR = {"error": str, "error_description": str}

CONTENT_QUALITY = {
    "scanToxicity": {
        "isDetected": bool,
        "categories": [{"categoryName": str, "score": NUMBER}],
    }
}
GENERATION_PARAMETERS = {"finish_reason": str, "index": int, "logprobs": NULL}
USAGE = {"completion_tokens": int, "prompt_tokens": int, "total_tokens": int}

SALESFORCE_TOKEN = {
    "access_token": str,
    "signature": str,
    "token_format": str,
    "scope": str,
    "instance_url": str,
    "id": str,
    "token_type": str,
    "issued_at": str,
    "api_instance_url": str,
}
SALESFORCE_CHAT = {
    "id": str,
    "generationDetails": {
        "generations": [
            {
                "id": str,
                "role": str,
                "content": str,
                "timestamp": int,
                "parameters": GENERATION_PARAMETERS,
                "contentQuality": CONTENT_QUALITY,
            }
        ],
        "parameters": {
            "created": int,
            "model": str,
            "object": str,
            "system_fingerprint": NULL,
            "usage": USAGE,
        },
    },
}
SALESFORCE_GENERATION = {
    "id": str,
    "generation": {
        "id": str,
        "generatedText": str,
        "contentQuality": CONTENT_QUALITY,
        "parameters": GENERATION_PARAMETERS,
    },
    "moreGenerations": NULL,
    "prompt": NULL,
    "parameters": {
        "created": int,
        "model": str,
        "system_fingerprint": NULL,
        "object": str,
        "usage": USAGE,
    },
}
SALESFORCE_EMBEDDINGS = {
    "embeddings": [{"embedding": [NUMBER], "index": int}],
    "parameters": {
        "usage": {"prompt_tokens": int, "total_tokens": int},
        "model": str,
        "object": str,
    },
}

DATABRICKS_TOKEN = {"access_token": str, "token_type": str, "scope": str, "expires_in": int}
TOOL_CALL = {"id": str, "type": str, "function": {"name": str, "arguments": str}}
DATABRICKS_CHAT = {
    "id": str,
    "object": str,
    "created": int,
    "model": str,
    "choices": [
        {
            "index": int,
            "message": {
                "role": str,
                "content": (str, NULL),
                "tool_calls": Optional([TOOL_CALL]),
            },
            "finish_reason": str,
            "logprobs": NULL,
        }
    ],
    "usage": USAGE,
}
DATABRICKS_COMPLETION = {
    "id": str,
    "object": str,
    "created": int,
    "model": str,
    "choices": [{"index": int, "text": str, "finish_reason": str, "logprobs": NULL}],
    "usage": USAGE,
}
DATABRICKS_EMBEDDINGS = {
    "id": str,
    "object": str,
    "model": str,
    "data": [{"object": str, "index": int, "embedding": [NUMBER]}],
    "usage": {"prompt_tokens": int, "total_tokens": int},
}
