"""Where the cassette tests send their requests, and how cassettes are recorded and scrubbed.

Replay is the default (``SFMODELS_RECORD_MODE`` unset or ``none``): requests are answered from
``cassettes/langchain/`` and a request with no recorded answer fails; nothing is sent. To
record, set ``SFMODELS_RECORD_MODE`` to a vcrpy record mode (``once`` records missing cassettes,
``rewrite`` replaces them) and ``SFMODELS_RECORD_TARGET`` to ``emulator`` (the default: a local
emulator is started) or ``live`` (the real services, credentials from the usual environment
variables).

Requests are matched on method, path, query and body, never on the host, so a replay needs no
server and a recording made against any host replays anywhere.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

CASSETTE_DIR = Path(__file__).resolve().parents[2] / "cassettes" / "langchain"
RECORD_MODE = os.environ.get("SFMODELS_RECORD_MODE", "none") or "none"
TARGET = os.environ.get("SFMODELS_RECORD_TARGET", "emulator") or "emulator"
REPLAYING = RECORD_MODE == "none"
LIVE = not REPLAYING and TARGET == "live"

SALESFORCE_CHAT_MODEL = "sfdc_ai__DefaultOpenAIGPT4OmniMini"
SALESFORCE_OTHER_CHAT_MODEL = "sfdc_ai__DefaultGPT4Omni"
SALESFORCE_EMBEDDING_MODEL = "sfdc_ai__DefaultOpenAITextEmbeddingAda_002"
DATABRICKS_CHAT_ENDPOINT = "databricks-meta-llama-3-3-70b-instruct"
DATABRICKS_OTHER_CHAT_ENDPOINT = "databricks-claude-sonnet-4-5"
DATABRICKS_EMBEDDING_ENDPOINT = "databricks-gte-large-en"

# A replay never connects: these only have to be well formed.
_REPLAY_URL = "http://127.0.0.1:9"
_REPLAY_TOKEN = "cassette-replay-token"

_SECRET_KEYS = ("access_token", "refresh_token", "id_token", "client_secret", "token",
                "signature")
_TOKEN_PATHS = ("/services/oauth2/token", "/oidc/v1/token")
_KEPT_RESPONSE_HEADERS = ("content-type", "x-request-id")


class _Emulator:
    """The emulator recordings are made against (set by a session fixture when recording)."""

    url: str | None = None
    salesforce_token: str | None = None
    databricks_token: str | None = None


EMULATOR = _Emulator()


def use_emulator(url: str, salesforce_token: str, databricks_token: str) -> None:
    EMULATOR.url, EMULATOR.salesforce_token = url, salesforce_token
    EMULATOR.databricks_token = databricks_token


def salesforce_params() -> dict[str, Any]:
    """Connection settings of the Salesforce classes under test: static tokens only, so that
    no token request is ever recorded."""
    if LIVE:
        return {}  # SALESFORCE_ACCESS_TOKEN (and SALESFORCE_API_BASE) from the environment
    if REPLAYING:
        return {"api_key": _REPLAY_TOKEN, "api_base": _REPLAY_URL + "/einstein/platform/v1"}
    assert EMULATOR.url, "the emulator was not started for recording"
    return {"api_key": EMULATOR.salesforce_token,
            "api_base": EMULATOR.url + "/einstein/platform/v1"}


def databricks_params() -> dict[str, Any]:
    if LIVE:
        return {}  # DATABRICKS_HOST and DATABRICKS_TOKEN from the environment
    if REPLAYING:
        return {"host": _REPLAY_URL, "api_key": _REPLAY_TOKEN}
    assert EMULATOR.url, "the emulator was not started for recording"
    return {"host": EMULATOR.url, "api_key": EMULATOR.databricks_token}


# -- scrubbing ------------------------------------------------------------------------------------
def _scrub_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("REDACTED" if k.lower() in _SECRET_KEYS and isinstance(v, str) else
                    _scrub_json(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub_json(v) for v in value]
    return value


def _scrub_body(body: Any) -> Any:
    if not body:
        return body
    raw = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    try:
        scrubbed = json.dumps(_scrub_json(json.loads(raw)))
    except ValueError:
        pairs = parse_qsl(raw, keep_blank_values=True)
        if not pairs:
            return body
        scrubbed = urlencode([(k, "REDACTED" if k.lower() in _SECRET_KEYS else v)
                              for k, v in pairs])
    return scrubbed.encode() if isinstance(body, bytes) else scrubbed


def scrub_request(request: Any) -> Any:
    if request.path.endswith(_TOKEN_PATHS):
        request.body = _scrub_body(request.body)
    return request


def scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    response["headers"] = {k: v for k, v in response.get("headers", {}).items()
                           if k.lower() in _KEPT_RESPONSE_HEADERS}
    body = response.get("body", {})
    if isinstance(body, dict) and body.get("string"):
        raw = body["string"]
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        if any(key in text for key in _SECRET_KEYS[:4]):
            body["string"] = _scrub_body(raw)
    return response


def _canonical_ids(value: Any, seen: dict[str, str]) -> Any:
    """The body with tool-call ids renumbered in order of appearance."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if (key == "tool_call_id" and isinstance(item, str)) or (
                    key == "id" and isinstance(item, str) and "function" in value):
                out[key] = seen.setdefault(item, f"call-{len(seen)}")
            else:
                out[key] = _canonical_ids(item, seen)
        return out
    if isinstance(value, list):
        return [_canonical_ids(item, seen) for item in value]
    return value


def _json_body(request: Any) -> Any:
    body = request.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        return json.loads(body) if body else body
    except ValueError:
        return body


def body_matcher(r1: Any, r2: Any) -> None:
    """Bodies match as JSON, up to the tool-call ids LangChain makes up at random (few-shot
    examples, for instance): those are compared by position, not by value."""
    left, right = _json_body(r1), _json_body(r2)
    if _canonical_ids(left, {}) != _canonical_ids(right, {}):
        raise AssertionError("request bodies differ")


def vcr_config() -> dict[str, Any]:
    return {
        # From the environment, never "once" by default: a missing cassette must fail, not
        # quietly go to the network.
        "record_mode": RECORD_MODE,
        "match_on": ["method", "path", "query", "json_body"],
        "filter_headers": [("authorization", "REDACTED"), ("x-api-key", "REDACTED"),
                           ("cookie", "REDACTED"),
                           # Noise that varies between machines and runs.
                           *((name, None) for name in ("host", "user-agent", "connection",
                                                       "accept-encoding", "content-length"))],
        "before_record_request": scrub_request,
        "before_record_response": scrub_response,
        "decode_compressed_response": True,
        "allow_playback_repeats": True,
    }
