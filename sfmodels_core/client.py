"""What both provider clients share: auth and transport wiring, lifecycle, bulk planning."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import httpx

from . import batching
from .auth import BearerAuth, TokenSource
from .errors import ResponseValidationError, SFModelsError
from .lifecycle import Closeable
from .options import ClientOptions
from .transport import JSON, ErrorParser, Transport, loads
from .validation import require_name, require_texts

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
                 content_type: str = JSON) -> None:
        self.provider = provider
        self.options = options
        self.batch_size = options.batch_size or self.default_batch_size
        self.max_concurrency = options.max_concurrency
        self.auth = BearerAuth(token_source)
        self._transport = Transport(
            provider=provider, parse_error=parse_error, headers=headers, auth=self.auth,
            options=options, transport=transport, async_transport=async_transport,
            content_type=content_type)
        # Tokens are minted through the same transport, retries included, without the auth.
        self.auth.send = self._transport.send_token_request
        self.auth.asend = self._transport.asend_token_request

    def close(self) -> None:
        self._transport.close()

    async def aclose(self) -> None:
        await self._transport.aclose()

    def _read(self, response: httpx.Response, parse: Callable[[Any], R]) -> R:
        """A successful response, parsed; a body that does not fit the documented shape (an HTML
        page from a proxy, a missing field, a vector too few) is an error of our hierarchy."""
        try:
            return parse(loads(response.content))
        except SFModelsError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            provider = self.provider
            raise ResponseValidationError(
                f"{provider} answered {response.status_code} with a body this client cannot "
                f"use ({type(exc).__name__}: {exc}): {response.text[:200]!r}",
                status_code=response.status_code, provider=provider,
                request_id=response.headers.get("x-request-id"),
                body=response.text[:500]) from exc

    def _embed_plan(self, name: Any, what: str, texts: Any) -> tuple[str, list[Sequence[str]]]:
        """The checked model/endpoint name and the batches to send (none for no texts)."""
        return require_name(name, what), batching.split(require_texts(texts), self.batch_size)
