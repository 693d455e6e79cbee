"""``sfmodels demo``: a question answered from a small bundled corpus, four ways.

LangChain (a retriever with ``ChatSalesforce``, and ``ChatDatabricks`` streaming and calling a
tool) and LlamaIndex (a ``VectorStoreIndex`` query engine on each provider), with feedback sent
through each framework's feedback handler. Each provider runs against the real service when its
credentials are set (the SALESFORCE_* and DATABRICKS_* variables), otherwise against the
built-in emulator; the output says which. The exit code is 0 only when every step worked.

Where each part lives:

- :mod:`.tour`: the four sections in order, and the summary;
- :mod:`.langchain_tour`, :mod:`.llama_index_tour`: the sections of each framework;
- :mod:`.question`: the question, and the documents in ``corpus/`` that answer it;
- :mod:`.services`: whether each provider's calls go to the real service or the emulator;
- :mod:`.report`: what the tour prints as each section runs.
"""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    """Run the tour with ``sfmodels demo``'s options; the tour's modules load only now."""
    from .tour import run as tour

    return tour(args)
