"""The question the tour asks, and the bundled documents (``corpus/*.md``) that answer it."""

from __future__ import annotations

from importlib import resources

QUESTION = "How many days do customers have to return a product?"


def corpus() -> list[tuple[str, str]]:
    """(name, text) of the bundled documents."""
    folder = resources.files(__package__).joinpath("corpus")
    return sorted((item.name, item.read_text(encoding="utf-8")) for item in folder.iterdir()
                  if item.name.endswith(".md"))
