"""Scenario 4: streaming. Time to first chunk and total for 200-token answers.

The emulator answers a question from a 200-token context sentence, 50 ms before the first byte
and ``--event-delay-ms`` between events. Ours vs databricks-langchain's ChatDatabricks.stream.

    python benchmarks/streaming.py [--event-delay-ms 1] [--runs 20]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from _common import LLAMA, emulator, peer, table

WORDS = [
    "the", "orbital", "survey", "recorded", "a", "bright", "comet", "passing", "near", "the",
    "outer", "moons", "while", "astronomers", "tracked", "dust", "plumes",
]


def long_answer_prompt() -> str:
    # One context sentence of about 200 tokens; the question matches it, so it is the answer.
    sentence = " ".join(WORDS[i % len(WORDS)] + (f" {i}" if i % 7 == 0 else "")
                        for i in range(170)) + "."
    return f"Context: {sentence}\n\nQuestion: What did the orbital survey of the comet record?"


def measure(model: Any, prompt: str, runs: int) -> tuple[float, float, int]:
    firsts, totals, chunks = [], [], 0
    for _ in range(runs):
        start = time.perf_counter()
        first = None
        chunks = 0
        for chunk in model.stream(prompt):
            if first is None and chunk.content:
                first = time.perf_counter() - start
            chunks += 1
        totals.append(time.perf_counter() - start)
        firsts.append(first or totals[-1])
    return statistics.median(firsts) * 1000, statistics.median(totals) * 1000, chunks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--event-delay-ms", type=float, default=1)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    prompt = long_answer_prompt()
    with emulator(latency_ms=args.latency_ms, stream_delay_ms=args.event_delay_ms) as emu:
        from langchain_sfmodels import ChatDatabricks

        ours = ChatDatabricks(endpoint=LLAMA, host=emu.databricks_host,
                              api_key=emu.databricks_token, max_tokens=200)

        def peer_chat() -> Any:
            from databricks_langchain import ChatDatabricks as Theirs
            return Theirs(endpoint=LLAMA, max_tokens=200)

        theirs = peer(peer_chat)
        tokens = ours.invoke(prompt).usage_metadata
        rows: list[tuple[Any, ...]] = []
        for name, model in (("langchain_sfmodels ChatDatabricks", ours),
                            ("databricks_langchain ChatDatabricks", theirs)):
            if model is None:
                rows.append((name, None, None, None))
                continue
            measure(model, prompt, 2)  # warm up
            rows.append((name, *measure(model, prompt, args.runs)))
    table(f"Streaming: {tokens['output_tokens'] if tokens else '?'}-token answers, "
          f"{args.latency_ms:.0f} ms to first byte, {args.event_delay_ms} ms between events "
          f"(median of {args.runs})",
          ("client", "first chunk ms", "total ms", "chunks"), rows)


if __name__ == "__main__":
    main()
