"""Reading long replies under the prompted tool protocol: time per reply as the reply grows.

Each shape is a kind of long reply real models write; the time should grow about linearly with
the size (a quadratic scan shows up as 4x the time for 2x the size). Prints milliseconds per
parse for every size, and the ratio between the two largest sizes.

    PYTHONPATH=. python benchmarks/tool_replies.py [--sizes 25,50,100,200] [--repeat 3]
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from collections.abc import Callable

from sfmodels_core.tool_protocol import ToolSpec, parse_json_reply, parse_tool_reply

TOOLS = [ToolSpec("get_weather", "Weather in a city", {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})]
CALL = '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}'
SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank. "


def prose_then_call(size: int) -> str:
    return SENTENCE * (size // len(SENTENCE)) + CALL


def long_final_answer(size: int) -> str:
    return json.dumps({"final_answer": SENTENCE * (size // len(SENTENCE))})


def braces_in_prose(size: int) -> str:
    """Prose full of unclosed braces and brackets (templates, code, emoticons)."""
    unit = "Use {name or [index here, then "
    return unit * (size // len(unit)) + CALL


def nested_unclosed(size: int) -> str:
    """A deep structure that never closes, as a reply cut off inside nested JSON."""
    return '{"final_answer": ' + '[{"a": ' * (size // 7)


def many_small_objects(size: int) -> str:
    """Thousands of small JSON objects (a listing) followed by the call."""
    unit = '{"id": 1, "ok": true} '
    return unit * (size // len(unit)) + CALL


def long_arguments(size: int) -> str:
    text = SENTENCE * (size // len(SENTENCE))
    return json.dumps({"tool_calls": [{"name": "get_weather", "arguments": {"city": text}}]})


def structured_after_prose(size: int) -> str:
    return SENTENCE * (size // len(SENTENCE)) + '{"name": "Ann", "age": 31}'


SHAPES: dict[str, Callable[[int], str]] = {
    "prose, then the call": prose_then_call,
    "one long final answer": long_final_answer,
    "unclosed braces in prose": braces_in_prose,
    "cut off inside nesting": nested_unclosed,
    "many small objects": many_small_objects,
    "long arguments": long_arguments,
    "JSON reply after prose": structured_after_prose,
}


def timed(parse: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        parse()
        best = min(best, time.perf_counter() - start)
    return best * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="25,50,100,200", help="reply sizes in KB")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{'shape':<28}" + "".join(f"{str(s) + ' KB':>11}" for s in sizes) + "   ratio")
    for name, build in SHAPES.items():
        row = []
        for size in sizes:
            text = build(size * 1000)
            row.append(timed(functools.partial(parse_json_reply, text, None)
                             if name == "JSON reply after prose"
                             else functools.partial(parse_tool_reply, text, TOOLS), args.repeat))
        ratio = row[-1] / row[-2] if len(row) > 1 and row[-2] > 0 else float("nan")
        print(f"{name:<28}" + "".join(f"{ms:>8.1f} ms" for ms in row) + f"   x{ratio:.1f}")


if __name__ == "__main__":
    main()
