"""Every framework class under a 30% mix of faults: same results, no duplicates, typed errors."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from sfmodels_core.errors import APITimeoutError, ServerError
from sfmodels_emulator import Emulator

FAULTS = ["429", "500", "503", "reset", "truncated"]
LLAMA = "databricks-meta-llama-3-3-70b-instruct"
GTE = "databricks-gte-large-en"


def sf(emu: Emulator, **extra: Any) -> dict[str, Any]:
    return {"domain": emu.salesforce_domain, "client_id": emu.salesforce_client_id,
            "client_secret": emu.salesforce_client_secret, **extra}


def dbx(emu: Emulator, **extra: Any) -> dict[str, Any]:
    return {"host": emu.databricks_host, "api_key": emu.databricks_token, **extra}


def run_langchain(emu: Emulator, retries: int) -> dict[str, Any]:
    from langchain_sfmodels import ChatDatabricks, ChatSalesforce, DatabricksEmbeddings

    texts = [f"passage {i} on subject {i % 11}" for i in range(1500)]
    chat = ChatDatabricks(endpoint=LLAMA, **dbx(emu, max_retries=retries))
    return {
        "salesforce": [ChatSalesforce(**sf(emu, max_retries=retries)).invoke(f"Question {i}?")
                       .content for i in range(5)],
        "stream": ["".join(str(c.content) for c in chat.stream(f"Tell me about rivers {i}"))
                   for i in range(5)],
        "embeddings": DatabricksEmbeddings(endpoint=GTE, **dbx(emu, max_retries=retries))
        .embed_documents(texts),
    }


def run_llama_index(emu: Emulator, retries: int) -> dict[str, Any]:
    from llama_index.core.llms import ChatMessage

    from llama_index_sfmodels import DatabricksEmbedding, DatabricksLLM, SalesforceLLM

    llm = DatabricksLLM(endpoint=LLAMA, **dbx(emu, max_retries=retries))

    async def streams() -> list[str]:
        out = []
        for i in range(5):
            last = ""
            async for part in await llm.astream_chat([ChatMessage(role="user",
                                                                  content=f"Rivers {i}")]):
                last = part.message.content or ""
            out.append(last)
        return out

    return {
        "salesforce": [SalesforceLLM(**sf(emu, max_retries=retries)).complete(f"Q {i}").text
                       for i in range(5)],
        "stream": asyncio.run(streams()),
        "embeddings": DatabricksEmbedding(endpoint=GTE, **dbx(emu, max_retries=retries))
        .get_text_embedding_batch([f"passage {i}" for i in range(1500)]),
    }


@pytest.mark.parametrize("run", [run_langchain, run_llama_index], ids=["langchain", "llama_index"])
def test_a_30_percent_fault_mix_changes_nothing(emulator: Emulator, run: Any) -> None:
    clean = run(emulator, 3)
    emulator.configure(fault_rate=0.3, fault_kinds=FAULTS)
    faulty = run(emulator, 12)
    assert faulty == clean  # same answers and vectors, in the same order, none duplicated
    assert sum(emulator.counters()["faults"].values()) >= 3


def test_beyond_the_retry_budget_the_typed_error_comes_promptly(emulator: Emulator) -> None:
    from langchain_sfmodels import ChatDatabricks

    emulator.configure(fault_rate=1.0, fault_kinds=["500"])
    chat = ChatDatabricks(endpoint=LLAMA, **dbx(emulator, max_retries=2))
    started = time.monotonic()
    with pytest.raises(ServerError) as info:
        chat.invoke("hi")
    assert info.value.status_code == 500
    assert time.monotonic() - started < 4  # two backoffs of at most 0.5 s and 1 s
    with pytest.raises(ServerError):
        list(chat.stream("hi"))


def test_a_hanging_server_fails_within_the_timeout(emulator: Emulator) -> None:
    from llama_index_sfmodels import SalesforceLLM

    emulator.configure(fault_rate=1.0, fault_kinds=["hang"], hang_s=60)
    llm = SalesforceLLM(**sf(emulator, timeout=0.5, max_retries=1))
    emulator.configure(fault_token_routes=False)
    started = time.monotonic()
    with pytest.raises(APITimeoutError):
        llm.complete("hello")
    assert time.monotonic() - started < 4  # two attempts of 0.5 s and one backoff


def test_tokens_expiring_mid_run_cost_one_mint_and_no_failed_call(emulator: Emulator) -> None:
    from langchain_sfmodels import ChatSalesforce

    chat = ChatSalesforce(**sf(emulator))
    answers = []
    for i in range(6):
        if i == 3:
            emulator.expire_tokens()
        answers.append(chat.invoke(f"Question {i}?").content)
    assert all(answers)
    assert emulator.counters()["tokens_minted"]["salesforce"] == 2
