"""The error hierarchy every layer of sfmodels raises.

Every error carries what a user needs to act on it: the HTTP status, the provider's error code
and message, the request id, and where we know one, a hint. None of them ever holds a secret:
messages are built from provider error bodies and our own text, never from request headers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "APIConnectionError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "InvalidInputError",
    "ModelReplyError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "SFModelsError",
    "ServerError",
    "TokenError",
]


class SFModelsError(Exception):
    """Base class of every error raised by sfmodels."""

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
    ) -> None:
        self.message = message
        self.status_code = status_code
        self.error_code = error_code
        self.provider_message = provider_message
        self.request_id = request_id
        self.provider = provider
        self.hint = hint
        self.body = body
        super().__init__(message)

    def __str__(self) -> str:
        parts = [self.message]
        details = []
        if self.status_code is not None:
            details.append(f"status {self.status_code}")
        if self.error_code:
            details.append(f"code {self.error_code}")
        if self.request_id:
            details.append(f"request id {self.request_id}")
        if details:
            parts.append(f"({', '.join(details)})")
        text = " ".join(parts)
        if self.hint:
            text += f"\nHint: {self.hint}"
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        # Picklable with every field (errors cross thread and process pools).
        return (type(self), (self.message,), self.__dict__)


class ConfigurationError(SFModelsError, ValueError):
    """The client is not configured well enough to send anything (missing or ambiguous settings)."""


class BadRequestError(SFModelsError):
    """The service rejected the request as malformed (HTTP 400/422)."""


class InvalidInputError(BadRequestError, ValueError):
    """Bad input caught locally, before any request was sent."""


class AuthenticationError(SFModelsError):
    """The credentials were refused (HTTP 401), or a token could not be used."""


class TokenError(AuthenticationError):
    """Minting an access token failed at the token endpoint."""


class PermissionDeniedError(SFModelsError):
    """The credentials are valid but not allowed to do this (HTTP 403)."""


class NotFoundError(SFModelsError):
    """Unknown model, endpoint or route (HTTP 404)."""


class RateLimitError(SFModelsError):
    """Too many requests (HTTP 429), after the retries allowed were used up."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class ServerError(SFModelsError):
    """The service failed or was busy (HTTP 5xx, 423, 409, 408), after the retries allowed."""


class ModelReplyError(SFModelsError, ValueError):
    """A model's reply did not follow the prompted tool or JSON protocol, even after the one
    repair round. ``problems`` lists what was wrong with the last reply."""

    def __init__(self, message: str, *, problems: Sequence[str] = (), **kwargs: Any) -> None:
        self.problems = list(problems)
        super().__init__(message, **kwargs)


class APIConnectionError(SFModelsError):
    """The service could not be reached, or the connection broke before a full answer arrived."""


class APITimeoutError(APIConnectionError):
    """No full answer arrived within the configured timeout."""
