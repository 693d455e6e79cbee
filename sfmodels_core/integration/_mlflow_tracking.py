"""Where MLflow feedback goes: the tracking URI resolved once, shown without its secrets, and set
for a while only, in a process that must not keep it.

A command logs one rating and exits; a Spark Python worker runs one task after another, for
other jobs too, so the URI a feedback job needs is set around its own work and the worker's
previous setting (and ``MLFLOW_TRACKING_URI``) put back afterwards. A URI may hold a secret (a
password in ``postgresql://user:password@host/db``, a token in a query string): what is printed
or written into a result is :func:`shown_uri`'s form of it.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import InvalidInputError
from .mlflow_feedback import require_mlflow

__all__ = [
    "ENV",
    "MASK",
    "absolute_uri",
    "resolve_tracking_uri",
    "scrub",
    "shown_uri",
    "use_tracking_uri",
]

#: The environment variable MLflow reads its tracking URI from.
ENV = "MLFLOW_TRACKING_URI"
#: What a secret part of a URI is shown as.
MASK = "***"
#: Query parameters whose values are not shown.
_SECRET_KEY = re.compile(r"pass|pwd|secret|token|key|sig|auth|cred|session", re.IGNORECASE)


def shown_uri(uri: str) -> str:
    """``uri`` as it may be printed: a password in its user-info part masked (a user-info part
    without one, which may be a token, masked whole) and the values of secret-looking query
    parameters (``token=``, ``password=``, ``sig=``, ...) masked."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return MASK
    shown = uri
    if "@" in parts.netloc:
        userinfo, _, host = parts.netloc.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        masked = f"{user}:{MASK}@{host}" if colon and user else f"{MASK}@{host}"
        shown = shown.replace(parts.netloc, masked, 1)
    if parts.query:
        pieces = []
        for piece in parts.query.split("&"):
            key, equals, _ = piece.partition("=")
            pieces.append(f"{key}={MASK}" if equals and _SECRET_KEY.search(key) else piece)
        shown = shown.replace("?" + parts.query, "?" + "&".join(pieces), 1)
    return shown


def scrub(text: str, uri: str) -> str:
    """``text`` (an error message) with ``uri`` in it replaced by its shown form."""
    shown = shown_uri(uri)
    return text if shown == uri else text.replace(uri, shown)


def absolute_uri(uri: str) -> str:
    """``uri`` with a relative local store made absolute (``sqlite:///mlflow.db``,
    ``./mlruns``), so that a process started in another directory finds the same store."""
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        path, question, query = uri[len("sqlite:///"):].partition("?")
        if path and path != ":memory:":
            return f"sqlite:///{os.path.abspath(path)}{question}{query}"
        return uri
    if uri.startswith(("./", "../")):
        return os.path.abspath(uri)
    return uri


def resolve_tracking_uri(uri: Any = None) -> str:
    """The tracking URI to log to: ``uri`` when given (a string or a path), else MLflow's own
    (``mlflow.set_tracking_uri``, ``MLFLOW_TRACKING_URI``, else its default), with a relative
    local store made absolute. Needs MLflow installed."""
    mlflow = require_mlflow()
    if uri is None:
        uri = mlflow.get_tracking_uri()
    elif isinstance(uri, os.PathLike):
        uri = Path(uri).absolute().as_uri()
    if not isinstance(uri, str):
        raise InvalidInputError(f"tracking_uri must be a string, got {type(uri).__name__}")
    if not uri.strip():
        raise InvalidInputError("tracking_uri is empty")
    return absolute_uri(uri.strip())


class _Scrubber(logging.Filter):
    """Rewrites log records that hold ``uri`` to hold its shown form (MLflow's own warnings
    name the URL of a request that failed, user-info and all)."""

    def __init__(self, uri: str) -> None:
        super().__init__()
        self.uri = uri

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.uri in message:
            record.msg, record.args = scrub(message, self.uri), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text and self.uri in record.exc_text:
            record.exc_text = scrub(record.exc_text, self.uri)
        return True


@contextmanager
def use_tracking_uri(uri: str) -> Iterator[None]:
    """MLflow logs to ``uri`` inside the block; after it, the process's previous tracking URI
    (set or from ``MLFLOW_TRACKING_URI``, which ``mlflow.set_tracking_uri`` overwrites) is back
    as it was. Meanwhile, when the URI holds a secret, log records written through MLflow's
    handlers or the root logger's show it masked."""
    mlflow = require_mlflow()
    env = os.environ.get(ENV)
    before = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    handlers = []
    if shown_uri(uri) != uri:
        scrubber = _Scrubber(uri)
        handlers = [*logging.getLogger("mlflow").handlers, *logging.getLogger().handlers]
        for handler in handlers:
            handler.addFilter(scrubber)
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(scrubber)
        # Set again only when it was set besides the environment (the same value as the
        # environment's is the environment's).
        mlflow.set_tracking_uri(None if before == env else before)
        if env is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = env
