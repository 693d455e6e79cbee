"""A LlamaIndex FunctionAgent calling Python tools, on Databricks or Salesforce.

Databricks models call tools natively; Salesforce models do it through sfmodels' prompted tool
protocol (the Models API has no tool fields), with the same agent code. Settings come from the
environment (DATABRICKS_HOST/DATABRICKS_TOKEN, or the SALESFORCE_* variables); offline, start
`sfmodels emulator` and paste its export lines.

    python examples/agent_with_tools.py --provider salesforce "Multiply 12 by 7, please."
"""

from __future__ import annotations

import argparse
import asyncio

from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.llms.function_calling import FunctionCallingLLM

from llama_index_sfmodels import DatabricksLLM, SalesforceLLM


def multiply(a: int, b: int) -> int:
    """Multiply two integers and return the product."""
    return a * b


def get_order_status(order_number: int) -> str:
    """Look up the shipping status of an order by its order number."""
    return f"Order {order_number} left the warehouse and arrives tomorrow."


async def ask(llm: FunctionCallingLLM, question: str) -> str:
    agent = FunctionAgent(tools=[multiply, get_order_status], llm=llm,
                          system_prompt="Use the tools to answer; never guess numbers.")
    return str(await agent.run(question))


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("question", nargs="?", default="Multiply 12 by 7, please.")
    parser.add_argument("--provider", choices=("databricks", "salesforce"), default="databricks")
    args = parser.parse_args(argv)
    llm: FunctionCallingLLM = (DatabricksLLM(endpoint="databricks-meta-llama-3-3-70b-instruct")
                               if args.provider == "databricks" else SalesforceLLM())
    answer = asyncio.run(ask(llm, args.question))
    print(answer)
    return answer


if __name__ == "__main__":
    main()
