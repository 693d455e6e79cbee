"""What both provider clients share: auth and transport wiring, lifecycle, reading answers,
and driving a bulk embedding (:mod:`.bulk` plans and runs it)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import httpx

from . import bulk
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
)
from .options import ClientOptions
from .types import EmbeddingResult, ParsedBatch
from .vectors import BadVector, VectorCheck, VectorSink, as_list

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
        #: The length of the vectors each model or endpoint gave this client in a job that
        #: finished: every later vector from it must have it too, one text or a million.
        self._dimensions: dict[str, int] = {}

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
                    resume_from: BulkEmbeddingError | None, compact: bool) -> bulk.EmbedPlan:
        """The checked name and texts, and the job that embeds what is still missing."""
        target = require_name(name, what)
        items = require_texts(texts)
        if not isinstance(compact, bool):
            raise InvalidInputError(f"compact must be True or False, got {compact!r}")
        todo = list(range(len(items)))
        known = self._dimensions.get(target)
        plan = bulk.EmbedPlan(target, items, bulk.BulkJob(
            todo, self.batch_size, self.options.retry, self.options.bulk_give_up_after),
            VectorSink(len(items), known) if compact else None, VectorCheck(known))
        if resume_from is not None:
            bulk.check_resume(resume_from, target, items, self.provider)
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
            plan.check = VectorCheck(known if first is None else len(first))
        return plan

    def _remember_dimension(self, plan: bulk.EmbedPlan,
                            result: EmbeddingResult[Any]) -> EmbeddingResult[Any]:
        """A job that finished: its vectors' length is the model's, for every later job."""
        dim = plan.sink.dim if plan.sink is not None else plan.check.dim
        if dim:
            self._dimensions.setdefault(plan.target, dim)
        return result

    def _was_refused(self, target: str, name: str) -> bool:
        """Whether the service refused the body field ``name`` for ``target`` before."""
        return (target, name) in self._refused_fields

    def _drop_refused_field(self, request: bulk.EmbedRequest, target: str, error: SFModelsError,
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

    def _bulk_embed(self, plan: bulk.EmbedPlan, request: bulk.EmbedRequest,
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
            bulk.run_bulk(plan.job, one, self.max_concurrency)
        return self._remember_dimension(plan, plan.outcome())

    async def _abulk_embed(self, plan: bulk.EmbedPlan, request: bulk.EmbedRequest,
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
            await bulk.arun_bulk(plan.job, one, self.max_concurrency)
        return self._remember_dimension(plan, plan.outcome())
