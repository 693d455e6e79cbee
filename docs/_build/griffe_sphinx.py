"""A griffe extension for the API pages: the packages' docstrings are written for Sphinx.

- ``#:`` comments above (or after) an assignment document it, as Sphinx's autodoc reads them;
  griffe reads only string literals, so the comments become the attributes' docstrings.
- Roles (``:class:`Vectors```, ``:func:`~.read_tool_reply```, ``:data:`...```) become code
  spans, and a paragraph ending in ``::`` ends in ``:``, and a ``::`` line alone goes (the indented
  block after it is code in Markdown too).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from griffe import Alias, Attribute, Docstring, Extension, Module, Object

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|data|attr|mod|exc|obj|const):`~?\.?([^`]+)`")
LITERAL_BLOCK = re.compile(r"(\S)::\n")
ALONE = re.compile(r"^[ \t]*::[ \t]*\n", re.MULTILINE)


def _comment_doc(lines: list[str], lineno: int) -> str | None:
    """The ``#:`` comment lines right above line ``lineno`` (1-based), or after it on the line."""
    own = lines[lineno - 1]
    if "#:" in own:
        return own.split("#:", 1)[1].strip()
    found: list[str] = []
    index = lineno - 2
    while index >= 0 and lines[index].strip().startswith("#:"):
        found.insert(0, lines[index].strip()[2:].strip())
        index -= 1
    return " ".join(found) if found else None


class SphinxDocstrings(Extension):
    def __init__(self) -> None:
        self._sources: dict[Path, list[str]] = {}

    def _lines(self, path: Path) -> list[str]:
        if path not in self._sources:
            self._sources[path] = path.read_text(encoding="utf-8").splitlines()
        return self._sources[path]

    def on_package(self, *, pkg: Module, **kwargs: Any) -> None:
        self._walk(pkg)

    def _walk(self, obj: Object) -> None:
        for member in list(obj.members.values()):
            if isinstance(member, Alias):
                continue
            if isinstance(member, Attribute) and member.docstring is None and member.lineno:
                path = member.filepath
                if isinstance(path, Path):
                    text = _comment_doc(self._lines(path), member.lineno)
                    if text:
                        member.docstring = Docstring(text, parent=member)
            if member.is_module or member.is_class:
                self._walk(member)
            self._fix(member)
        self._fix(obj)

    @staticmethod
    def _fix(obj: Object) -> None:
        if obj.docstring is not None:
            value = ROLE.sub(lambda m: f"`{m.group(1)}`", obj.docstring.value)
            obj.docstring.value = ALONE.sub("", LITERAL_BLOCK.sub(r"\1:\n", value))
