"""What both provider clients share: auth and transport wiring, lifecycle, bulk planning."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from . import batching
from ._lifecycle import Closeable
from ._retry import ErrorParser
from ._throttle import ThrottleStats
from ._transport import JSON, Transport, loads
from ._validation import require_name, require_texts
from .auth import BearerAuth, TokenSource
from .errors import (
    BadRequestError,
    BulkEmbeddingError,
    InvalidInputError,
    ResponseValidationError,
    SFModelsError,
    make_bulk_error,
)
from .options import ClientOptions
from .types import EmbeddingResult, ParsedBatch, Usage, expect_vectors
from .vectors import (
    BadVector,
    StoredRows,
    VectorCheck,
    VectorSink,
    as_list,
    may_hold_bools,
)

R = TypeVar("R")


class BaseClient(Closeable):
    """One token cache and one transport (pooled sync and async HTTP clients) per instance.

    Share an instance, and close it (or use it as a context manager) when done.
    """

    #: Texts per embeddings request when the options do not say.
    default_batch_size: int

    def __init__(self, token_source: TokenSource, *, provider: str, headers: dict[str, str],
                 parse_error: ErrorParser, options: ClientOptions,
                 transport: httpx.BaseTransport | None,
                 async_transport: httpx.AsyncBaseTransport | None,
                 content_type: str = JSON,
                 default_rates: Mapping[str, int] | None = None) -> None:
        self.provider = provider
        self.options = options
        self.batch_size = options.batch_size or self.default_batch_size
        self.max_concurrency = options.max_concurrency
        self.auth = BearerAuth(token_source)
        self._transport = Transport(
            provider=provider, parse_error=parse_error, headers=headers, auth=self.auth,
            options=options, transport=transport, async_transport=async_transport,
            content_type=content_type, default_rates=default_rates)
        # Tokens are minted through the same transport, retries included, without the auth.
        self.auth.send = self._transport.send_token_request
        self.auth.asend = self._transport.asend_token_request
        #: (model or endpoint, body field) pairs a service refused by name: not sent again.
        self._refused_fields: set[tuple[str, str]] = set()

    @property
    def throttle(self) -> ThrottleStats:
        """What the client's adaptive concurrency limit is doing now: the limit, requests in
        flight and waiting, requests sent and 429s seen (shared by every call of this client)."""
        return self._transport.throttle.stats()

    def close(self) -> None:
        self._transport.close()

    async def aclose(self) -> None:
        await self._transport.aclose()

    def _read(self, response: httpx.Response, parse: Callable[[Any], R], *,
              raw: bool = False) -> R:
        """A successful response, parsed; a body that does not fit the documented shape (an HTML
        page from a proxy, a missing field, a vector too few) is an error of our hierarchy.
        With ``raw``, ``parse`` gets (the JSON read, the body's bytes)."""
        content = response.content
        try:
            data = loads(content)
        except ValueError as exc:
            raise self._unusable(response, exc, incomplete=True) from exc
        try:
            return parse((data, content) if raw else data)
        except SFModelsError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            raise self._unusable(response, exc) from exc

    def _unusable(self, response: httpx.Response, exc: Exception,
                  incomplete: bool = False) -> ResponseValidationError:
        provider = self.provider
        if isinstance(exc, BadVector):
            # Whole JSON holding a wrong vector is a wrong answer, not a cut one: not
            # ``incomplete``, so a bulk job does not send the batch again (see BadVector).
            return ResponseValidationError(
                f"{provider} answered {response.status_code} with an embedding this client "
                f"cannot use: {exc}", status_code=response.status_code, provider=provider,
                request_id=response.headers.get("x-request-id"), body=response.text[:500])
        return ResponseValidationError(
            f"{provider} answered {response.status_code} with a body this client cannot "
            f"use ({type(exc).__name__}: {exc}): {response.text[:200]!r}",
            status_code=response.status_code, provider=provider,
            request_id=response.headers.get("x-request-id"),
            body=response.text[:500], incomplete=incomplete)

    # -- bulk embeddings: one mechanism for both providers, sync and async ----------------------
    def _embed_plan(self, name: Any, what: str, texts: Any,
                    resume_from: BulkEmbeddingError | None, compact: bool) -> EmbedPlan:
        """The checked name and texts, and the job that embeds what is still missing."""
        target = require_name(name, what)
        items = require_texts(texts)
        if not isinstance(compact, bool):
            raise InvalidInputError(f"compact must be True or False, got {compact!r}")
        todo = list(range(len(items)))
        plan = EmbedPlan(target, items, batching.BulkJob(
            todo, self.batch_size, self.options.retry, self.options.bulk_give_up_after),
            VectorSink(len(items)) if compact else None)
        if resume_from is not None:
            _check_resume(resume_from, target, items, self.provider)
            plan.job.todo = list(resume_from.missing)
            plan.prior_vectors = dict(resume_from.vectors)
            plan.prior_usage = resume_from.usage
            plan.prior_raw = list(resume_from.raw)
            plan.prior_model = getattr(resume_from, "served_model", None)
            earlier = getattr(resume_from, "sink", None)
            if compact and isinstance(earlier, VectorSink) and plan.prior_vectors:
                plan.sink = earlier  # the vectors done are in it: fill in the rest, no copy
            elif plan.sink is not None:
                plan.sink.put_many(plan.prior_vectors)
            else:  # rows of an earlier compact call, as lists
                plan.prior_vectors = {i: as_list(v) for i, v in plan.prior_vectors.items()}
            # The vectors still to come must be as long as those the earlier call kept.
            first = next(iter(plan.prior_vectors.values()), None)
            plan.check = VectorCheck(None if first is None else len(first))
        return plan

    def _was_refused(self, target: str, name: str) -> bool:
        """Whether the service refused the body field ``name`` for ``target`` before."""
        return (target, name) in self._refused_fields

    def _drop_refused_field(self, request: EmbedRequest, target: str, error: SFModelsError,
                 sent: dict[str, Any]) -> bool:
        """Whether ``error`` refuses one of the optional fields ``sent`` had, by name; if so the
        field is dropped (for this call and the client's later ones) and the batch resent."""
        name = request.drop_refused(error, sent)
        if name is None:
            return False
        self._refused_fields.add((target, name))
        return True

    # -- the provider's I/O, which the bulk embedding below drives
    def _post(self, path: str, body: dict[str, Any], parse: Callable[[Any], R], *,
              retry: bool = True, raw: bool = False
              ) -> R:  # pragma: no cover - every provider defines it
        raise NotImplementedError

    async def _apost(self, path: str, body: dict[str, Any], parse: Callable[[Any], R], *,
                     retry: bool = True, raw: bool = False
                     ) -> R:  # pragma: no cover - every provider defines it
        raise NotImplementedError

    def _bulk_embed(self, plan: EmbedPlan, request: EmbedRequest,
                    parse: Callable[[Any], ParsedBatch]) -> EmbeddingResult[Any]:
        """Every text of ``plan`` still missing, in batches of ``request``'s body with their
        ``input``; each batch is one attempt, and the job decides retries and splits."""

        def one(indices: list[int]) -> ParsedBatch:
            while True:
                body = request.body_for(plan.texts, indices)
                try:
                    return self._post(request.path, body, lambda read: plan.keep(
                        indices, parse(read[0]), read[1]), retry=False, raw=True)
                except BadRequestError as exc:
                    if not self._drop_refused_field(request, plan.target, exc, body):
                        raise

        if plan.job.todo:
            batching.run_bulk(plan.job, one, self.max_concurrency)
        return plan.outcome()

    async def _abulk_embed(self, plan: EmbedPlan, request: EmbedRequest,
                           parse: Callable[[Any], ParsedBatch]) -> EmbeddingResult[Any]:
        async def one(indices: list[int]) -> ParsedBatch:
            while True:
                body = request.body_for(plan.texts, indices)
                try:
                    return await self._apost(request.path, body, lambda read: plan.keep(
                        indices, parse(read[0]), read[1]), retry=False, raw=True)
                except BadRequestError as exc:
                    if not self._drop_refused_field(request, plan.target, exc, body):
                        raise

        if plan.job.todo:
            await batching.arun_bulk(plan.job, one, self.max_concurrency)
        return plan.outcome()


@dataclass
class EmbedRequest:
    """The path and body of every batch of one bulk embed (each batch adds its ``input``).

    ``optional``: fields the call can do without (``encoding_format``): a 400 that names one
    drops it and the batch is sent again, rather than failing the call.
    """

    path: str
    body: dict[str, Any]
    optional: tuple[str, ...] = ()

    def body_for(self, texts: list[str], indices: list[int]) -> dict[str, Any]:
        return {**self.body, "input": [texts[i] for i in indices]}

    def drop_refused(self, error: SFModelsError, sent: dict[str, Any]) -> str | None:
        """The optional field of ``sent`` that ``error`` refuses by name, now dropped (another
        batch may have dropped it first); None if there is none."""
        said = (error.provider_message or error.message or "").lower()
        for name in self.optional:
            if name in sent and name in said:
                self.body = {k: v for k, v in self.body.items() if k != name}
                return name
        return None


@dataclass
class EmbedPlan:
    """One bulk embed: its texts, its job, where compact vectors go, and what an earlier
    attempt already did."""

    target: str
    texts: list[str]
    job: batching.BulkJob
    sink: VectorSink | None = None
    #: The checks of vectors kept as lists (compact vectors are checked by the sink).
    check: VectorCheck = field(default_factory=VectorCheck)
    prior_vectors: dict[int, Any] = field(default_factory=dict)
    prior_usage: Usage | None = None
    prior_raw: list[Any] = field(default_factory=list)
    prior_model: str | None = None

    def keep(self, indices: list[int], batch: ParsedBatch,
             content: bytes | None = None) -> ParsedBatch:
        """A batch just read: one vector per text, checked, and kept as lists or written to
        the sink (a :class:`~sfmodels_core.vectors.BadVector` names the first that is wrong).
        ``content``: the body's bytes, which tell whether it can hold a bool at all."""
        vectors, model, usage, rest = expect_vectors(batch, len(indices))
        bools = content is None or (any(type(vector) is list for vector in vectors)
                                    and may_hold_bools(content))
        if self.sink is None:
            return self.check.lists(indices, vectors, bools), model, usage, rest
        self.sink.put(indices, vectors, bools)
        return StoredRows(self.sink, indices), model, usage, rest

    def outcome(self) -> EmbeddingResult[Any]:
        """Every vector in input order, or the error with everything done so far."""
        job = self.job
        batches = job.ordered_results()
        usage = Usage.total([self.prior_usage, *(batch[2] for batch in batches)])
        raw = self.prior_raw + [batch[3] for batch in batches]
        model = self.prior_model or next((batch[1] for batch in batches if batch[1]), None)
        total = len(self.texts)
        if job.finished and len(self.prior_vectors) + job.done == total:
            if self.sink is not None:
                vectors: Any = self.sink.vectors()
            else:
                by_index = self.prior_vectors
                by_index.update(job.vectors())
                vectors = [by_index[i] for i in range(total)]
            return EmbeddingResult.model_construct(vectors=vectors, model=model, usage=usage,
                                                   raw=raw)
        done = self.prior_vectors
        done.update(job.vectors())
        cause = job.error or next(iter(job.refused.values()))
        error = make_bulk_error(
            cause, vectors=done, missing=[i for i in range(total) if i not in done],
            refused=dict(job.refused), total=total, target=self.target,
            texts_digest=texts_digest(self.texts), usage=usage, raw=raw, sink=self.sink)
        error.served_model = model  # type: ignore[attr-defined]
        raise error


def texts_digest(texts: list[str]) -> str:
    """A digest of the texts and their order, so a resume can tell they are the same."""
    digest = hashlib.sha256()
    for text in texts:
        data = text.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def _check_resume(error: Any, target: str, texts: list[str], provider: str) -> None:
    if not isinstance(error, BulkEmbeddingError):
        raise InvalidInputError("resume_from must be the BulkEmbeddingError an earlier embed "
                                f"raised, got {type(error).__name__}")
    if error.provider is not None and error.provider != provider:
        raise InvalidInputError(f"resume_from comes from a {error.provider} call, not "
                                f"{provider}")
    if error.target != target:
        raise InvalidInputError(f"resume_from was made with {error.target!r}, not {target!r}: "
                                "vectors of two models cannot be mixed")
    if error.total != len(texts) or error.texts_digest != texts_digest(texts):
        raise InvalidInputError(f"resume_from was made for other texts ({error.total} texts); "
                                "pass the same texts in the same order")
