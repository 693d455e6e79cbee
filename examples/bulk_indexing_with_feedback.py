"""Bulk indexing with LlamaIndex, answering on Salesforce, and feedback on the answer.

Embeds a few thousand passages with a Databricks embedding endpoint (requests of 150 texts,
four at a time), builds a VectorStoreIndex, answers a question with a Salesforce model, and
sends the user's verdict to Salesforce with the generation id the feedback handler recorded.
Settings come from the environment (DATABRICKS_* and SALESFORCE_* variables); offline, start
`sfmodels emulator` and paste its export lines.

    python examples/bulk_indexing_with_feedback.py [--passages 3000]
"""

from __future__ import annotations

import argparse
import time

from llama_index.core import Document, VectorStoreIndex

from llama_index_sfmodels import DatabricksEmbedding, SalesforceFeedbackHandler, SalesforceLLM

FACT = "The Oslo warehouse ships orders on weekdays and on Saturday mornings."


def passages(count: int) -> list[Document]:
    filler = [Document(text=f"Catalogue entry {i}: item {i} weighs {i % 40 + 1} kilograms and "
                            f"comes in colour {('red', 'blue', 'green')[i % 3]}.")
              for i in range(count - 1)]
    return [*filler[: count // 2], Document(text=FACT), *filler[count // 2:]]


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--passages", type=int, default=3000)
    args = parser.parse_args(argv)

    embed_model = DatabricksEmbedding(endpoint="databricks-gte-large-en")
    started = time.perf_counter()
    index = VectorStoreIndex.from_documents(passages(args.passages), embed_model=embed_model)
    print(f"indexed {args.passages} passages in {time.perf_counter() - started:.1f}s")

    feedback = SalesforceFeedbackHandler().register()
    engine = index.as_query_engine(llm=SalesforceLLM(), similarity_top_k=3)
    response = engine.query("When does the Oslo warehouse ship orders?")
    print("answer:", response)
    verdict = "GOOD" if "Saturday" in str(response) else "BAD"
    result = feedback.submit(verdict, response=response, text="checked against the catalogue")
    print(f"feedback {verdict} recorded as {result.feedback_id}")
    return str(response)


if __name__ == "__main__":
    main()
