"""Salesforce Models API: wire format (request bodies, response parsing, errors) and the client.

Request building and parsing are pure module-level functions; :class:`SalesforceClient` only adds
I/O, and its sync and async methods differ only in ``await``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, TypeVar, overload

import httpx
from pydantic import BaseModel, ConfigDict, Field

from . import _lenient as lenient
from . import defaults
from ._base_client import BaseClient
from ._transport import loads
from ._validation import name_segment, require_messages, url_segment
from .bulk import EmbedRequest
from .credentials import Secret, resolve_salesforce
from .errors import BulkEmbeddingError, ErrorDetails, InvalidInputError
from .options import ClientOptions
from .types import (
    EmbeddingResult,
    ParsedBatch,
    Usage,
    ordered,
)
from .vectors import MISSING, Vectors

R = TypeVar("R")
PROVIDER = "Salesforce"
ROLES = ("system", "user", "assistant")
#: The request content type Salesforce's spec names.
CONTENT_TYPE = "application/json;charset=utf-8"
HEADERS = {
    "x-sfdc-app-context": "EinsteinGPT",
    "x-client-feature-id": "ai-platform-models-connected-app",
    "accept": "application/json",
}
FeedbackValue = Literal["GOOD", "BAD"]


# -- results --------------------------------------------------------------------------------------
class ContentQuality(BaseModel):
    """Salesforce's toxicity scan of a generation."""

    is_toxicity_detected: bool | None = None
    #: Score per category name (higher: more likely toxic).
    scores: dict[str, float] = Field(default_factory=dict)

    @classmethod
    def from_wire(cls, data: Any) -> ContentQuality | None:
        scan = data.get("scanToxicity") if isinstance(data, dict) else None
        if not isinstance(scan, dict):
            return None
        scores: dict[str, float] = {}
        categories = scan.get("categories")
        for item in categories if isinstance(categories, list) else []:
            name = lenient.opt_str(item.get("categoryName")) if isinstance(item, dict) else None
            score = lenient.opt_float(item.get("score")) if isinstance(item, dict) else None
            if name is not None and score is not None:  # the list varies by model
                scores[name] = score
        return cls(is_toxicity_detected=lenient.opt_bool(scan.get("isDetected")), scores=scores)


class Generation(BaseModel):
    """One generated answer. ``id`` is the generation id that feedback refers to."""

    id: str | None
    text: str
    role: str = "assistant"
    finish_reason: str | None = None
    index: int = 0
    timestamp: int | None = None
    content_quality: ContentQuality | None = None
    #: The model's refusal message, when the service reports one (beyond the spec).
    refusal: str | None = None


class ChatResult(BaseModel):
    """A chat-generations answer. ``text`` and ``generation_id`` are those of the first choice."""

    model_config = ConfigDict(protected_namespaces=())

    id: str
    generations: list[Generation]
    model: str | None = None
    #: The model's provider (``parameters.provider``, beyond the spec), when sent.
    provider: str | None = None
    #: Token counts; fields beyond the spec (``completion_tokens_details``, ...) stay on it.
    usage: Usage | None = None
    raw: dict[str, Any] = Field(repr=False)

    @property
    def text(self) -> str:
        return self.generations[0].text if self.generations else ""

    @property
    def generation_id(self) -> str | None:
        return self.generations[0].id if self.generations else None

    @property
    def finish_reason(self) -> str | None:
        return self.generations[0].finish_reason if self.generations else None


class GenerationResult(ChatResult):
    """A generations (text completion) answer; same accessors as :class:`ChatResult`."""


class FeedbackResult(BaseModel):
    """Feedback the service accepted: any 2xx answer, whatever its body (202 with JSON, with an
    empty body or with text). ``message`` is the service's message when it sent one."""

    feedback_id: str
    generation_id: str
    message: str | None = None
    status_code: int | None = None


# -- wire format (pure) ---------------------------------------------------------------------------
def _options(localization: Mapping[str, Any] | None,
             tags: Mapping[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if localization is not None:
        if not isinstance(localization, Mapping) or not isinstance(
                localization.get("defaultLocale"), str):
            raise InvalidInputError(
                "localization must be a dict with a 'defaultLocale' such as 'en_US'")
        out["localization"] = dict(localization)
    if tags is not None:
        if not isinstance(tags, Mapping):
            raise InvalidInputError("tags must be a dict")
        out["tags"] = dict(tags)
    return out


def chat_request(model: str, messages: Any, localization: Mapping[str, Any] | None = None,
                 tags: Mapping[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    name = name_segment(model, "model")
    msgs = [{"role": m["role"], "content": m["content"]}
            for m in require_messages(messages, ROLES)]
    return f"/models/{name}/chat-generations", {"messages": msgs, **_options(localization, tags)}


def generation_request(model: str, prompt: Any, localization: Mapping[str, Any] | None = None,
                       tags: Mapping[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    name = name_segment(model, "model")
    if not isinstance(prompt, str):
        raise InvalidInputError(f"prompt must be a string, got {type(prompt).__name__}")
    return f"/models/{name}/generations", {"prompt": prompt, **_options(localization, tags)}


def embedding_request(model: str, texts: Sequence[str], localization: Mapping[str, Any] | None,
                      tags: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """The path and body of an embeddings call; ``model`` is checked already (the bulk plan
    did it), and made one path segment here."""
    return f"/models/{url_segment(model)}/embeddings", {"input": list(texts),
                                                        **_options(localization, tags)}


def feedback_request(generation_id: str, feedback: str | None, *, text: str | None = None,
                     source: str | None = None, app_feedback: Mapping[str, Any] | None = None,
                     app_generation_id: str | None = None, app_generation: str | None = None,
                     feedback_id: str | None = None) -> dict[str, Any]:
    if not isinstance(generation_id, str) or not generation_id.strip():
        raise InvalidInputError("generation_id must be a non-empty string")
    value: str | None = None
    if feedback is not None:
        if not isinstance(feedback, str) or feedback.upper() not in ("GOOD", "BAD"):
            raise InvalidInputError(f"feedback must be 'GOOD', 'BAD' or None, got {feedback!r}")
        value = feedback.upper()
    body: dict[str, Any] = {"id": feedback_id or str(uuid.uuid4()),
                            "generationId": generation_id, "feedback": value}
    for key, item in (("feedbackText", text), ("source", source),
                      ("appGenerationId", app_generation_id), ("appGeneration", app_generation)):
        if item is not None:
            if not isinstance(item, str):
                raise InvalidInputError(f"{key} must be a string, got {type(item).__name__}")
            body[key] = item
    if app_feedback is not None:
        if not isinstance(app_feedback, Mapping):
            raise InvalidInputError("app_feedback must be a dict")
        body["appFeedback"] = dict(app_feedback)
    return body


def _generation(data: Any, text_key: str, index: int) -> Generation:
    if not isinstance(data, dict):
        raise ValueError("a generation is not an object")
    params = lenient.opt_dict(data.get("parameters"))
    text = data.get(text_key)
    if text is None and text_key == "generatedText":
        text = data.get("text")  # the spec's required name; real bodies use generatedText
    if not isinstance(text, str):
        raise ValueError(f"generation {index} has " + (
            f"no {text_key}" if text is None else f"a {text_key} that is not text"))
    return Generation(
        id=lenient.opt_str(data.get("id")), text=text or "",
        role=lenient.opt_str(data.get("role")) or "assistant",
        finish_reason=lenient.opt_str(params.get("finish_reason")),
        index=lenient.opt_int(params.get("index"), index) or 0,
        timestamp=lenient.opt_int(data.get("timestamp")),
        content_quality=ContentQuality.from_wire(data.get("contentQuality")),
        refusal=lenient.opt_str(data.get("refusal")) or lenient.opt_str(params.get("refusal")))


def _model_and_usage(params: Any) -> dict[str, Any]:
    params = lenient.opt_dict(params)
    return {"model": lenient.opt_str(params.get("model")),
            "usage": lenient.usage(params.get("usage"))}


def parse_chat(body: dict[str, Any]) -> ChatResult:
    details = lenient.opt_dict(body.get("generationDetails"))
    generations = details.get("generations")
    if not isinstance(generations, list) or not generations:
        raise ValueError("the answer has no generationDetails.generations" if not generations
                         else "generationDetails.generations is not a list")
    gens = [_generation(g, "content", i) for i, g in enumerate(generations)]
    params = lenient.opt_dict(details.get("parameters"))
    return ChatResult(id=lenient.opt_str(body.get("id")) or "", generations=gens, raw=body,
                      provider=lenient.opt_str(params.get("provider")), **_model_and_usage(params))


def parse_generation(body: dict[str, Any]) -> GenerationResult:
    more = body.get("moreGenerations") or []
    if not body.get("generation"):
        raise ValueError("the answer has no generation")
    items = [body["generation"], *(more if isinstance(more, list) else [])]
    gens = [_generation(g, "generatedText", i) for i, g in enumerate(items)]
    params = lenient.opt_dict(body.get("parameters"))
    return GenerationResult(id=lenient.opt_str(body.get("id")) or "", generations=gens, raw=body,
                            provider=lenient.opt_str(params.get("provider")),
                            **_model_and_usage(params))


def parse_embeddings(body: dict[str, Any]) -> ParsedBatch:
    """(vectors in input order, model, usage, the body without the vectors)."""
    items = ordered(lenient.vector_items(body.get("embeddings") or [], "embeddings"))
    rest = {k: v for k, v in body.items() if k != "embeddings"}
    info = _model_and_usage(rest.get("parameters"))
    return [item.get("embedding", MISSING) for item in items], info["model"], info["usage"], rest


def feedback_result(body: Mapping[str, Any], status_code: int, content: bytes) -> FeedbackResult:
    """The result of feedback the service accepted. The answer's body is informative only: the
    feedback is stored once the service answers 2xx, so an empty or non-JSON body never fails
    (a caller retrying after an error would store it twice)."""
    message: str | None = None
    text = content.decode("utf-8", "replace").strip()
    if text:
        try:
            answer = loads(content)
        except ValueError:
            message = text[:500]
        else:
            message = lenient.opt_str(answer.get("message")) if isinstance(answer, dict) else None
    return FeedbackResult(feedback_id=body["id"], generation_id=body["generationId"],
                          message=message, status_code=status_code)


def parse_error(status: int, body: Any) -> ErrorDetails:
    """What a Models API error body (``errorCode``, ``messageCode``, ``message``, and optional
    ``targets``, ``parameters``, ``properties``, all kept in ``body``) or an OAuth error says."""
    if isinstance(body, list) and body and isinstance(body[0], dict):
        body = body[0]
    code = message = message_code = None
    if isinstance(body, dict):
        code = lenient.opt_str(body.get("errorCode")) or lenient.opt_str(body.get("error"))
        message = lenient.opt_str(body.get("message")) or lenient.opt_str(
            body.get("error_description"))
        message_code = lenient.opt_str(body.get("messageCode"))
    elif isinstance(body, str):
        message = body[:500]
    hint = {
        401: "The access token is missing, invalid or expired. Check that the External Client "
             "App has the api and sfap_api scopes and issues JWT-based access tokens; a "
             "pre-minted token may have expired or been truncated.",
        403: "The credentials may not use this model: check the app's scopes (api, sfap_api) "
             "and that Einstein generative AI is enabled for the org.",
        404: "Check the model API name (e.g. sfdc_ai__DefaultOpenAIGPT4OmniMini). Salesforce "
             "also answers 404 for missing scopes or a truncated token.",
        423: "Salesforce was busy; the call was retried and may succeed later.",
        429: "The org's per-minute or per-hour limit was reached; set requests_per_minute to "
             "stay under it.",
    }.get(status)
    return ErrorDetails(code=code or None, message=message or None, hint=hint,
                        message_code=message_code or None)


# -- the client -----------------------------------------------------------------------------------
class SalesforceClient(BaseClient):
    """Client for the Salesforce Models API: chat, generations, embeddings and feedback.

    Settings come from the arguments, then the environment (``SALESFORCE_DOMAIN``,
    ``SALESFORCE_CLIENT_ID``, ``SALESFORCE_CLIENT_SECRET``, ``SALESFORCE_ACCESS_TOKEN``,
    ``SALESFORCE_API_BASE``). One instance holds one pooled sync and one async HTTP client:
    share it, and close it (or use it as a context manager) when done.

    Timeout, retries, pacing, pool size and batching come from ``options`` (a
    :class:`~sfmodels_core.options.ClientOptions`), or as keywords (``timeout=30``,
    ``max_retries=5``, ``requests_per_minute=600``, ``batch_size=``, ``max_concurrency=``).
    Without ``requests_per_minute`` it keeps to the documented limits: at most 1,000 requests
    in any minute to the embeddings and feedback endpoints and 10,000 to each generation
    endpoint.

    Credentials (and the token, with every call) go only over https, or plain http to a
    loopback host (127.0.0.1, ::1, localhost: the emulator); ``allow_insecure_http=True``
    allows plain http to other hosts, with a warning. The ``api_instance_url`` of a token
    answer is held to the same rule. Model names are checked and percent-encoded as one path
    segment (see :func:`~sfmodels_core._validation.require_name` and
    :func:`~sfmodels_core._validation.url_segment`).
    """

    default_batch_size = defaults.SALESFORCE_EMBED_BATCH_SIZE

    def __init__(
        self,
        *,
        domain: str | None = None,
        client_id: str | None = None,
        client_secret: Secret = None,
        api_key: Secret = None,
        access_token: Secret = None,
        api_base: str | None = None,
        options: ClientOptions | None = None,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
        env: Mapping[str, str] | None = None,
        allow_insecure_http: bool = False,
        **settings: Any,
    ) -> None:
        resolved = resolve_salesforce(domain=domain, client_id=client_id,
                                      client_secret=client_secret,
                                      api_key=api_key if api_key is not None else access_token,
                                      api_base=api_base, env=env,
                                      allow_insecure_http=allow_insecure_http)
        self.allow_insecure_http = allow_insecure_http
        self._api_base = resolved.api_base
        super().__init__(
            resolved.token_source, provider=PROVIDER, headers=HEADERS, parse_error=parse_error,
            options=ClientOptions.build(options, **settings), transport=transport,
            async_transport=async_transport, content_type=CONTENT_TYPE,
            default_rates=defaults.SALESFORCE_REQUESTS_PER_MINUTE)

    def __repr__(self) -> str:
        return f"SalesforceClient(api_base={self._api_base!r}, auth={self.auth.source!r})"

    # -- where to send: the user's base, else the token's api_instance_url, else the default
    def _base_from(self, token_extra: Mapping[str, Any] | None) -> str:
        if self._api_base:
            return self._api_base
        instance = (token_extra or {}).get("api_instance_url")
        if isinstance(instance, str) and instance:
            return instance.rstrip("/") + "/einstein/platform/v1"
        return defaults.SALESFORCE_API_BASE

    def api_base(self) -> str:
        if self._api_base or not self.auth.source.refreshable:
            return self._base_from(None)
        return self._base_from(self.auth.get_token().extra)

    async def aapi_base(self) -> str:
        if self._api_base or not self.auth.source.refreshable:
            return self._base_from(None)
        return self._base_from((await self.auth.aget_token()).extra)

    def _post(self, path: str, body: dict[str, Any], parse: Callable[[Any], R], *,
              retry: bool = True, raw: bool = False) -> R:
        return self._read(self._transport.request("POST", self.api_base() + path, body,
                                                  retry=retry), parse, raw=raw)

    async def _apost(self, path: str, body: dict[str, Any], parse: Callable[[Any], R], *,
                     retry: bool = True, raw: bool = False) -> R:
        base = await self.aapi_base()
        return self._read(await self._transport.arequest("POST", base + path, body,
                                                         retry=retry), parse, raw=raw)

    # -- chat
    def chat(self, model: str, messages: Sequence[Any], *,
             localization: Mapping[str, Any] | None = None,
             tags: Mapping[str, Any] | None = None) -> ChatResult:
        """Send ``[{"role": "system"|"user"|"assistant", "content": str}, ...]``."""
        return self._post(*chat_request(model, messages, localization, tags), parse_chat)

    async def achat(self, model: str, messages: Sequence[Any], *,
                    localization: Mapping[str, Any] | None = None,
                    tags: Mapping[str, Any] | None = None) -> ChatResult:
        return await self._apost(*chat_request(model, messages, localization, tags), parse_chat)

    # -- generations
    def generate(self, model: str, prompt: str, *, localization: Mapping[str, Any] | None = None,
                 tags: Mapping[str, Any] | None = None) -> GenerationResult:
        return self._post(*generation_request(model, prompt, localization, tags),
                          parse_generation)

    async def agenerate(self, model: str, prompt: str, *,
                        localization: Mapping[str, Any] | None = None,
                        tags: Mapping[str, Any] | None = None) -> GenerationResult:
        return await self._apost(*generation_request(model, prompt, localization, tags),
                                 parse_generation)

    # -- embeddings: any number of texts, batched, in input order
    @overload
    def embed(self, model: str, texts: Sequence[str], *,
              localization: Mapping[str, Any] | None = None,
              tags: Mapping[str, Any] | None = None,
              resume_from: BulkEmbeddingError | None = None,
              compact: Literal[False] = False) -> EmbeddingResult[list[list[float]]]: ...

    @overload
    def embed(self, model: str, texts: Sequence[str], *,
              localization: Mapping[str, Any] | None = None,
              tags: Mapping[str, Any] | None = None,
              resume_from: BulkEmbeddingError | None = None,
              compact: Literal[True]) -> EmbeddingResult[Vectors]: ...

    @overload
    def embed(self, model: str, texts: Sequence[str], *,
              localization: Mapping[str, Any] | None = None,
              tags: Mapping[str, Any] | None = None,
              resume_from: BulkEmbeddingError | None = None,
              compact: bool) -> EmbeddingResult[Any]: ...

    def embed(self, model: str, texts: Sequence[str], *,
              localization: Mapping[str, Any] | None = None,
              tags: Mapping[str, Any] | None = None,
              resume_from: BulkEmbeddingError | None = None,
              compact: bool = False) -> EmbeddingResult[Any]:
        """One vector per text, in input order, however many texts (see ``BaseClient``'s bulk
        notes: batches retry while the job progresses; a failure carries the vectors done, and
        ``resume_from=`` that error sends only the missing texts). ``compact=True`` returns
        float32 :class:`~sfmodels_core.vectors.Vectors`, packed as each batch is read."""
        plan = self._embed_plan(model, "model", texts, resume_from, compact)
        return self._bulk_embed(plan, EmbedRequest(*embedding_request(
            plan.target, [], localization, tags)), parse_embeddings)

    @overload
    async def aembed(self, model: str, texts: Sequence[str], *,
                     localization: Mapping[str, Any] | None = None,
                     tags: Mapping[str, Any] | None = None,
                     resume_from: BulkEmbeddingError | None = None,
                     compact: Literal[False] = False) -> EmbeddingResult[list[list[float]]]: ...

    @overload
    async def aembed(self, model: str, texts: Sequence[str], *,
                     localization: Mapping[str, Any] | None = None,
                     tags: Mapping[str, Any] | None = None,
                     resume_from: BulkEmbeddingError | None = None,
                     compact: Literal[True]) -> EmbeddingResult[Vectors]: ...

    @overload
    async def aembed(self, model: str, texts: Sequence[str], *,
                     localization: Mapping[str, Any] | None = None,
                     tags: Mapping[str, Any] | None = None,
                     resume_from: BulkEmbeddingError | None = None,
                     compact: bool) -> EmbeddingResult[Any]: ...

    async def aembed(self, model: str, texts: Sequence[str], *,
                     localization: Mapping[str, Any] | None = None,
                     tags: Mapping[str, Any] | None = None,
                     resume_from: BulkEmbeddingError | None = None,
                     compact: bool = False) -> EmbeddingResult[Any]:
        plan = self._embed_plan(model, "model", texts, resume_from, compact)
        return await self._abulk_embed(plan, EmbedRequest(*embedding_request(
            plan.target, [], localization, tags)), parse_embeddings)

    # -- feedback
    def submit_feedback(self, generation_id: str, feedback: FeedbackValue | str | None, *,
                        text: str | None = None, source: str | None = None,
                        app_feedback: Mapping[str, Any] | None = None,
                        app_generation_id: str | None = None, app_generation: str | None = None,
                        feedback_id: str | None = None) -> FeedbackResult:
        """Tell Salesforce a generation was GOOD or BAD; returns the stored feedback id.

        Any 2xx answer is success, whatever its body (202 with JSON, empty or text): the
        feedback is stored by then, so nothing after it raises. Reuse ``feedback_id`` when
        retrying a submission yourself."""
        body = feedback_request(generation_id, feedback, text=text, source=source,
                                app_feedback=app_feedback, app_generation_id=app_generation_id,
                                app_generation=app_generation, feedback_id=feedback_id)
        response = self._transport.request("POST", self.api_base() + "/feedback", body)
        return feedback_result(body, response.status_code, response.content)

    async def asubmit_feedback(self, generation_id: str, feedback: FeedbackValue | str | None, *,
                               text: str | None = None, source: str | None = None,
                               app_feedback: Mapping[str, Any] | None = None,
                               app_generation_id: str | None = None,
                               app_generation: str | None = None,
                               feedback_id: str | None = None) -> FeedbackResult:
        body = feedback_request(generation_id, feedback, text=text, source=source,
                                app_feedback=app_feedback, app_generation_id=app_generation_id,
                                app_generation=app_generation, feedback_id=feedback_id)
        base = await self.aapi_base()
        response = await self._transport.arequest("POST", base + "/feedback", body)
        return feedback_result(body, response.status_code, response.content)


__all__ = [
    "ChatResult",
    "ContentQuality",
    "FeedbackResult",
    "Generation",
    "GenerationResult",
    "SalesforceClient",
]
