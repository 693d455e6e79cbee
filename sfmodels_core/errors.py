"""The errors every layer of sfmodels raises, and which HTTP statuses are retried.

::

    SFModelsError                      base of everything below
    ├── ConfigurationError (ValueError)   missing or ambiguous settings; nothing was sent
    ├── InvalidInputError (ValueError)    bad input caught locally; nothing was sent
    ├── ModelReplyError (ValueError)      a reply broke the prompted tool/JSON protocol twice
    ├── ResponseValidationError           a 2xx answer (or stream event) the client cannot use
    │   └── IncompleteResponseError           a stream that ended before its terminal marker
    ├── APIConnectionError                no full answer: refused, reset, cut off
    │   └── APITimeoutError               no full answer within the timeout
    └── APIStatusError                    the service answered with an error status
        ├── BadRequestError                   400, 422 and other 4xx not named here
        ├── AuthenticationError               401
        │   ├── TokenError                    the token endpoint refused to mint
        │   └── TokenExpiredError             a token shipped to a worker expired (or was
        │                                     refused): nothing more is sent with it
        ├── PermissionDeniedError             403
        ├── NotFoundError                     404
        ├── RateLimitError                    429 (``retry_after`` when the service sent one)
        └── ServerError                       5xx, 408, 409, 423 (``retry_after`` likewise)

    BulkEmbeddingError                 mixed into the class of the error a bulk ``embed`` ended
                                       with: it also carries the vectors done and the indices
                                       still missing (see its docstring)

Retried (with backoff, honouring ``Retry-After``): every status in :data:`RETRYABLE_STATUSES`
and every 5xx, and connection errors before the first byte of an answer. Nothing else is.
A single call stops after ``max_retries`` retries; a bulk ``embed`` keeps retrying while the job
as a whole makes progress (see :class:`BulkEmbeddingError`).

Every error carries what a user needs to act on it: the HTTP status, the provider's error code
and message, the request id and, where we know the usual cause, a hint. None of them ever holds
a secret: messages are built from provider error bodies and our own text, never from request
headers.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "RETRYABLE_STATUSES",
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BulkEmbeddingError",
    "ConfigurationError",
    "ErrorDetails",
    "IncompleteResponseError",
    "InvalidInputError",
    "ModelReplyError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseValidationError",
    "SFModelsError",
    "ServerError",
    "TokenError",
    "TokenExpiredError",
    "error_class_for_status",
    "is_retryable_status",
]

#: Statuses below 500 that are retried; every 5xx is retried too.
RETRYABLE_STATUSES = frozenset({408, 409, 423, 429})


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUSES or status >= 500


@dataclass(frozen=True)
class ErrorDetails:
    """What a provider's error body says, as each provider's ``parse_error`` reads it.

    ``code`` is the most specific code the body holds (an external model's own code rather than
    the wrapper's), ``message`` the innermost human message, ``message_code`` Salesforce's
    ``messageCode`` and ``request_id`` one found in the body (Databricks' ``details``).
    """

    code: str | None = None
    message: str | None = None
    hint: str | None = None
    message_code: str | None = None
    request_id: str | None = None


class SFModelsError(Exception):
    """Base class of every error raised by sfmodels.

    ``message_code`` is Salesforce's ``messageCode`` (e.g. ``E40001``), which identifies the
    error message more precisely than ``error_code``; ``None`` for other providers.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error_code: str | None = None,
        provider_message: str | None = None,
        request_id: str | None = None,
        provider: str | None = None,
        hint: str | None = None,
        body: Any = None,
        message_code: str | None = None,
    ) -> None:
        self.message = message
        self.status_code = status_code
        self.error_code = error_code
        self.provider_message = provider_message
        self.request_id = request_id
        self.provider = provider
        self.hint = hint
        self.body = body
        self.message_code = message_code
        super().__init__(message)

    def __str__(self) -> str:
        details = []
        if self.status_code is not None:
            details.append(f"status {self.status_code}")
        if self.error_code:
            details.append(f"code {self.error_code}")
        if self.message_code:
            details.append(f"message code {self.message_code}")
        if self.request_id:
            details.append(f"request id {self.request_id}")
        text = f"{self.message} ({', '.join(details)})" if details else self.message
        if self.hint:
            text += f"\nHint: {self.hint}"
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        # Picklable with every field (errors cross thread and process pools).
        return (type(self), (self.message,), self.__dict__)


class ConfigurationError(SFModelsError, ValueError):
    """The client is not configured well enough to send anything (missing or ambiguous settings)."""


class InvalidInputError(SFModelsError, ValueError):
    """Bad input caught locally, before any request was sent."""


class ModelReplyError(SFModelsError, ValueError):
    """A model's reply did not follow the prompted tool or JSON protocol, even after the one
    repair round. ``problems`` lists what was wrong with the last reply."""

    def __init__(self, message: str, *, problems: Sequence[str] = (), **kwargs: Any) -> None:
        self.problems = list(problems)
        super().__init__(message, **kwargs)


class ResponseValidationError(SFModelsError):
    """The service answered with success, but with a body (or a stream event) this client cannot
    use: an HTML page from a proxy, a missing field, one vector too few. ``incomplete`` is true
    when the body was not even whole JSON (cut off on the way): bulk calls retry those."""

    def __init__(self, message: str, *, incomplete: bool = False, **kwargs: Any) -> None:
        self.incomplete = incomplete
        super().__init__(message, **kwargs)


class IncompleteResponseError(ResponseValidationError):
    """A stream that ended (cleanly, as far as HTTP can tell) before the marker that says an
    answer is whole: ``[DONE]``, a ``finish_reason`` on every choice, or the Responses API's
    ``response.completed``. ``partial`` holds what arrived (a ``ChatCompletion`` or a
    ``Completion`` folded from the chunks), for a caller that wants to show it as such; it is
    never handed over as the answer."""

    def __init__(self, message: str, *, partial: Any = None, **kwargs: Any) -> None:
        self.partial = partial
        kwargs.setdefault("incomplete", True)
        super().__init__(message, **kwargs)


class APIConnectionError(SFModelsError):
    """The service could not be reached, or the connection broke before a full answer arrived."""


class APITimeoutError(APIConnectionError):
    """No full answer arrived within the configured timeout."""


class APIStatusError(SFModelsError):
    """The service answered with an error status (``status_code``), after any retries."""


class BadRequestError(APIStatusError):
    """The service rejected the request as malformed (HTTP 400, 422 and other 4xx)."""


class AuthenticationError(APIStatusError):
    """The credentials were refused (HTTP 401), or a token could not be used."""


class TokenError(AuthenticationError):
    """Minting an access token failed at the token endpoint."""


class TokenExpiredError(AuthenticationError):
    """A token minted elsewhere and shipped here with its expiry (``ship_token=True`` in a
    batch job) expired, or the service refused it: a worker cannot mint another, so the request
    was not sent (or, after a refusal, no further request is). ``expires_at`` is its expiry
    (epoch seconds; None when it was not known). Batch jobs keep it on the rows it hit, so a
    rerun on the job's saved output redoes only those rows, with a new token."""

    def __init__(self, message: str, *, expires_at: float | None = None, **kwargs: Any) -> None:
        self.expires_at = expires_at
        super().__init__(message, **kwargs)


class PermissionDeniedError(APIStatusError):
    """The credentials are valid but not allowed to do this (HTTP 403)."""


class NotFoundError(APIStatusError):
    """Unknown model, endpoint or route (HTTP 404)."""


class RateLimitError(APIStatusError):
    """Too many requests (HTTP 429), after the retries allowed were used up."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class ServerError(APIStatusError):
    """The service failed or was busy (HTTP 5xx, 423, 409, 408), after the retries allowed."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


_BY_STATUS: dict[int, type[APIStatusError]] = {
    401: AuthenticationError, 403: PermissionDeniedError, 404: NotFoundError,
    429: RateLimitError,
}


def error_class_for_status(status: int) -> type[APIStatusError]:
    """The class of the error raised for an HTTP error status."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if is_retryable_status(status):
        return ServerError
    if 400 <= status < 500:
        return BadRequestError
    return APIStatusError


class BulkEmbeddingError(SFModelsError):
    """A bulk ``embed`` that could not finish, with everything it did finish.

    It is never raised on its own: the error raised is of a class made from this one and the
    class of the error the job ended with (``BulkRateLimitError`` is both a
    ``BulkEmbeddingError`` and a :class:`RateLimitError`, and so on), so ``except
    RateLimitError`` still catches it and the status, error code, message, request id and hint
    are those of that error, which is also its ``__cause__``. It subclasses rather than wraps so
    that code written against the error tree keeps working when a call becomes a bulk one.

    - ``vectors``: input index -> vector, for every text already embedded (a list of floats,
      or with ``compact=True`` a float32 ``memoryview`` row: ``.tolist()`` makes it a list);
    - ``missing``: the input indices still without a vector, in order;
    - ``refused``: input index -> error, for single texts the service refused outright;
    - ``total``: how many texts the call was given.

    Resume with the same texts: ``client.embed(model, texts, resume_from=err)`` sends only the
    missing texts and returns every vector in input order (it checks that the texts and the model
    are the same before sending anything).
    """

    vectors: dict[int, Any]
    missing: list[int]
    refused: dict[int, SFModelsError]
    total: int
    #: What the resume check compares: the model or endpoint name and a digest of the texts.
    target: str
    texts_digest: str
    #: Usage and response bodies of the batches done, so a resumed result is complete.
    usage: Any
    raw: list[Any]

    @property
    def done(self) -> int:
        return len(self.vectors)

    def __reduce__(self) -> tuple[Any, ...]:
        base = next(c for c in type(self).__mro__[1:]
                    if issubclass(c, SFModelsError) and not issubclass(c, BulkEmbeddingError))
        state = {k: v for k, v in self.__dict__.items() if k != "sink"}
        # Compact rows are views of one block, which pickle cannot carry: copy each row.
        state["vectors"] = {i: array("f", v.tobytes()) if isinstance(v, memoryview) else v
                            for i, v in self.vectors.items()}
        return (_rebuild_bulk_error, (base, state))


_BULK_CLASSES: dict[type[SFModelsError], type[BulkEmbeddingError]] = {}


def bulk_error_class(base: type[SFModelsError]) -> type[BulkEmbeddingError]:
    """``BulkEmbeddingError`` mixed into ``base`` (one class per base, made once)."""
    cls = _BULK_CLASSES.get(base)
    if cls is None:
        bases = (BulkEmbeddingError,) if base is SFModelsError else (BulkEmbeddingError, base)
        cls = _BULK_CLASSES[base] = type(f"Bulk{base.__name__}", bases, {
            "__module__": __name__, "__doc__": BulkEmbeddingError.__doc__})
    return cls


def _rebuild_bulk_error(base: type[SFModelsError], state: dict[str, Any]) -> BulkEmbeddingError:
    error = Exception.__new__(bulk_error_class(base))
    Exception.__init__(error, state.get("message", ""))
    error.__dict__.update(state)
    return error


def make_bulk_error(cause: SFModelsError, *, vectors: dict[int, Any],
                    missing: list[int], refused: dict[int, SFModelsError], total: int,
                    target: str, texts_digest: str, usage: Any, raw: list[Any],
                    sink: Any = None) -> BulkEmbeddingError:
    """The error a bulk call ends with: ``cause``'s class and fields, plus the work done."""
    base: type[SFModelsError] = type(cause)
    if isinstance(cause, BulkEmbeddingError):  # a resumed job failing again
        base = next(c for c in base.__mro__[1:]
                    if issubclass(c, SFModelsError) and not issubclass(c, BulkEmbeddingError))
    state = dict(cause.__dict__)
    first = f" (first missing: text {missing[0]})" if missing else ""
    state.update(
        vectors=vectors, missing=missing, refused=refused, total=total, target=target,
        texts_digest=texts_digest, usage=usage, raw=raw, sink=sink,
        message=(f"{cause.message} [bulk embed: {len(vectors)} of {total} texts embedded, "
                 f"{len(missing)} missing{first}; embed(..., resume_from=error) sends only "
                 f"those]"))
    error = _rebuild_bulk_error(base, state)
    error.__cause__ = cause
    return error
