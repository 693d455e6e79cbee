"""The --out file: one JSON record a line, its keys always in one order, appended as batches land.

Each line is::

    {"id": "notes.txt:3", "provider": "databricks", "model": "databricks-gte-large-en",
     "instruction": null, "sha256": "<SHA-256 of the text, hex>", "text": "...",
     "embedding": [...]}

With ``--vectors base64`` the embedding is a string instead: the base64 of its little-endian
float32 numbers (OpenAI's ``encoding_format: "base64"``), half to a third of the size of a real
model's numbers as JSON. The vectors then stay float32 from the service to the file: asked for
as base64, kept in one block, written without a float object per number.

The keys come before the vector so that a resume (:mod:`.resume`) reads them from the start of
each line and never decodes a stored vector. One file holds the vectors of one provider, model
and instruction, written one way (an :class:`Identity`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sfmodels_core.errors import SFModelsError
from sfmodels_core.vectors import encode_base64

#: How vectors are written: JSON numbers, or base64 of little-endian float32.
VECTOR_FORMATS = ("float", "base64")


@dataclass(frozen=True)
class Identity:
    """Where a file's vectors come from: one file holds one provider, model and instruction."""

    provider: str
    model: str
    instruction: str | None
    vectors: str = "float"

    def describe(self) -> str:
        text = f"{self.provider} model {self.model}"
        text += f" with instruction {self.instruction!r}" if self.instruction else ""
        return text + (" written as base64" if self.vectors == "base64" else "")


def json_encoder() -> Callable[[Any], bytes]:
    """orjson when installed (4 to 5 times faster on float lists), else pydantic_core."""
    try:
        import orjson
    except ImportError:  # pragma: no cover - orjson comes with the cli extra
        import pydantic_core

        return pydantic_core.to_json
    return orjson.dumps


def record_writer(identity: Identity) -> Callable[[str, str, str, Any], bytes]:
    """A function (id, text, sha256 hex, vector) -> one record line, keys in the fixed order."""
    encode = json_encoder()
    middle = (b',"provider":' + encode(identity.provider) + b',"model":'
              + encode(identity.model) + b',"instruction":' + encode(identity.instruction)
              + b',"sha256":"')

    def vector_json(vector: Any) -> bytes:
        return encode(vector if isinstance(vector, list) else list(vector))

    def vector_base64(vector: Any) -> bytes:
        return b'"' + encode_base64(vector) + b'"'

    write_vector = vector_base64 if identity.vectors == "base64" else vector_json

    def record(rid: str, text: str, sha: str, vector: Any) -> bytes:
        return b"".join((b'{"id":', encode(rid), middle, sha.encode("ascii"), b'","text":',
                         encode(text), b',"embedding":', write_vector(vector), b"}\n"))

    return record


class Output:
    """The output file, opened on the first write: a run that writes nothing creates nothing."""

    def __init__(self, path: Path, needs_newline: bool) -> None:
        self.path = path
        self.needs_newline = needs_newline
        self.handle: Any = None

    def write(self, data: bytes) -> None:
        try:
            if self.handle is None:
                self.handle = self.path.open("ab")
                if self.needs_newline:
                    self.handle.write(b"\n")  # close a line an interrupted run left half-written
            self.handle.write(data)
            self.handle.flush()
        except OSError as exc:
            raise SFModelsError(
                f"cannot write --out {self.path}: {exc.strerror or exc}") from None

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
