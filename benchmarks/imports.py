"""Scenario 5: import time and memory, each in a fresh process.

Measures importing every public class of a package on top of the framework classes they all
subclass (LangChain's chat model, LLM, embeddings and callback bases; LlamaIndex's LLM and
embedding bases), and the peers the same way. Target: our LangChain
import adds under 0.2 s and under 30 MB on top of ``langchain_core``.

    python benchmarks/imports.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from typing import Any

from _common import table

PROBE = """
import json, resource, sys, time
def rss(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
exec(sys.argv[1])
b_rss = rss(); start = time.perf_counter()
exec(sys.argv[2])
print(json.dumps({"seconds": time.perf_counter() - start, "mb": rss() - b_rss}))
"""

# The framework classes every integration subclasses are the base, loaded before timing.
LANGCHAIN = ("from langchain_core.language_models import BaseChatModel, BaseLLM; "
             "from langchain_core.embeddings import Embeddings; "
             "from langchain_core.callbacks import BaseCallbackHandler")
LLAMA_INDEX = ("from llama_index.core.llms.function_calling import FunctionCallingLLM; "
               "from llama_index.core.base.embeddings.base import BaseEmbedding")
CASES = [
    ("langchain_sfmodels (all 7 classes)", "langchain_core", LANGCHAIN,
     "from langchain_sfmodels import ChatSalesforce, SalesforceLLM, SalesforceEmbeddings, "
     "ChatDatabricks, DatabricksLLM, DatabricksEmbeddings, SalesforceFeedbackHandler"),
    ("databricks_langchain", "langchain_core", LANGCHAIN,
     "from databricks_langchain import ChatDatabricks, DatabricksEmbeddings"),
    ("llama_index_sfmodels (all 5 classes)", "llama_index.core", LLAMA_INDEX,
     "from llama_index_sfmodels import SalesforceLLM, SalesforceEmbedding, DatabricksLLM, "
     "DatabricksEmbedding, SalesforceFeedbackHandler"),
    ("llama-index-llms/embeddings-databricks", "llama_index.core", LLAMA_INDEX,
     "from llama_index.llms.databricks import Databricks; "
     "from llama_index.embeddings.databricks import DatabricksEmbedding"),
    ("sfmodels_core clients", "Python", "import json",
     "from sfmodels_core import SalesforceClient, DatabricksClient"),
]


def probe(base: str, target: str) -> dict[str, float] | None:
    done = subprocess.run([sys.executable, "-c", PROBE, base, target],
                          capture_output=True, text=True)
    if done.returncode != 0:
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rows: list[tuple[Any, ...]] = []
    for name, label, base, target in CASES:
        results = [probe(base, target) for _ in range(args.runs)]
        ok = [r for r in results if r]
        if not ok:
            rows.append((name, label, None, None))
            continue
        rows.append((name, label, statistics.median(r["seconds"] for r in ok),
                     statistics.median(r["mb"] for r in ok)))
    table(f"Import cost on top of the framework base (median of {args.runs} fresh processes)",
          ("package", "on top of", "seconds", "MB"), rows)


if __name__ == "__main__":
    main()
