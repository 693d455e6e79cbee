"""The deterministic content functions, without a server."""

from __future__ import annotations

import json
import math

import pytest

from sfmodels_emulator.text.embeddings import embedding, embedding_json
from sfmodels_emulator.text.replies import generate_reply
from sfmodels_emulator.text.structured_output import json_object_output, structured_output
from sfmodels_emulator.text.tokens import (
    apply_stop,
    count_tokens,
    split_fragments,
    split_pieces,
    truncate_tokens,
)
from sfmodels_emulator.text.tool_calls import plan_tool_calls


def dot(a: list[float], b: list[float]) -> float:
    return math.fsum(x * y for x, y in zip(a, b, strict=True))


def test_tokens() -> None:
    assert count_tokens("") == 0
    assert count_tokens("Hello, world!") == 4
    assert count_tokens("magic_function(3)") == 4
    assert truncate_tokens("one two three four", 2) == ("one two", True)
    assert truncate_tokens("one two", 5) == ("one two", False)
    assert apply_stop("alpha beta gamma", ["gamma", "beta"]) == ("alpha ", True)
    assert apply_stop("alpha", ["zeta", ""]) == ("alpha", False)


@pytest.mark.parametrize("text", ["", "one", "  lead and trail  ", "Hello, how are you today?"])
def test_pieces_concatenate(text: str) -> None:
    assert "".join(split_pieces(text)) == text
    assert "".join(split_fragments(text)) == text


def test_embeddings_unit_norm_and_stable() -> None:
    for dim in (1536, 1024):
        for text in ("", "the of and", "Penguins live in Antarctica"):
            vector = embedding(text, dim)
            assert len(vector) == dim
            assert math.isclose(dot(vector, vector), 1.0, rel_tol=1e-9)
            parsed = json.loads(embedding_json(text, dim))
            assert len(parsed) == dim
            assert math.isclose(dot(parsed, parsed), 1.0, rel_tol=1e-6)
    assert embedding("", 1024) == embedding("the and of", 1024)
    # blake2b, not hash(): the first non-zero slot is fixed across interpreter runs.
    vector = embedding("penguin", 1024)
    assert [i for i, x in enumerate(vector) if x] == [
        next(i for i, x in enumerate(embedding("Penguins!", 1024)) if x)
    ]


def test_embedding_similarity_tracks_shared_words() -> None:
    a = embedding("The quick brown fox jumps over the lazy dog", 1536)
    b = embedding("A quick brown fox", 1536)
    c = embedding("Interest rates rose again this quarter", 1536)
    assert dot(a, b) > 0.5
    assert abs(dot(a, c)) < 0.1


@pytest.mark.parametrize(
    ("turns", "expected"),
    [
        (
            [
                (
                    "user",
                    "Answer the question based only on the following context:\n"
                    "Alice manages the Berlin office.\nBob runs the Tokyo office.\n\n"
                    "Question: Who runs the Tokyo office?",
                )
            ],
            "Bob runs the Tokyo office.",
        ),
        (
            [
                (
                    "user",
                    "Use the following pieces of retrieved context to answer the question.\n"
                    "Question: Where does Alice work? \n"
                    "Context: Alice manages the Berlin office. Bob runs the Tokyo office. \n"
                    "Answer:",
                )
            ],
            "Alice manages the Berlin office.",
        ),
        (
            [
                (
                    "user",
                    "Context information is below.\n---------------------\n"
                    "The Eiffel Tower is in Paris. It was finished in 1889.\n"
                    "---------------------\nGiven the context information and not prior "
                    "knowledge, answer the query.\nQuery: Where is the Eiffel Tower?\nAnswer: ",
                )
            ],
            "The Eiffel Tower is in Paris. It was finished in 1889.",
        ),
        (
            [
                (
                    "user",
                    "The original query is as follows: Who runs the Tokyo office?\n"
                    "We have provided an existing answer: Nobody.\n"
                    "We have the opportunity to refine the existing answer (only if needed) with "
                    "some more context below.\n------------\nBob runs the Tokyo office.\n"
                    "------------\nGiven the new context, refine the original answer to better "
                    "answer the query. If the context isn't useful, return the original answer.\n"
                    "Refined Answer: ",
                )
            ],
            "Bob runs the Tokyo office.",
        ),
        (
            [
                ("system", "Context: The warranty lasts two years."),
                ("user", "How long is the flight to Lima?"),
            ],
            "I don't know based on the provided context.",
        ),
    ],
)
def test_grounded_replies(turns: list[tuple[str, str]], expected: str) -> None:
    assert generate_reply(turns) == expected


def test_plain_replies_are_short_and_deterministic() -> None:
    assert generate_reply([("user", "Hello")]) == "Hello! How can I help you today?"
    reply = generate_reply([("system", "You are terse."), ("user", "Tell me about penguins")])
    assert "penguins" in reply
    assert reply == generate_reply([("user", "Tell me about penguins")])
    assert generate_reply([("user", "Explain volcanoes")]) != generate_reply(
        [("user", "Explain glaciers")]
    )


def test_reply_after_tool_results() -> None:
    turns = [("user", "Weather?"), ("assistant", ""), ("tool", "sunny"), ("tool", "windy")]
    reply = generate_reply(turns)
    assert "sunny" in reply and "windy" in reply


MAGIC = {
    "type": "function",
    "function": {
        "name": "magic_function",
        "description": "Apply a magic function to an input.",
        "parameters": {
            "type": "object",
            "properties": {
                "input": {"type": "integer", "exclusiveMinimum": -1000, "exclusiveMaximum": 1000}
            },
            "required": ["input"],
        },
    },
}


def test_tool_plan_takes_values_from_the_prompt() -> None:
    [call] = plan_tool_calls(
        [MAGIC], None, [("user", "What is the value of magic_function(3)? Use the tool.")]
    )
    assert call.name == "magic_function"
    assert json.loads(call.arguments) == {"input": 3}


def test_tool_plan_respects_bounds_when_forced() -> None:
    [call] = plan_tool_calls([MAGIC], "required", [("user", "Hello!")])
    value = json.loads(call.arguments)["input"]
    assert -1000 < value < 1000


def test_tool_plan_quoted_unicode_is_kept() -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "unicode_customer",
            "parameters": {
                "type": "object",
                "properties": {"customer_name": {"type": "string"}},
                "required": ["customer_name"],
            },
        },
    }
    [call] = plan_tool_calls(
        [tool], "required", [("user", "Create a customer named '你好啊集团' (Hello Group)")]
    )
    assert "你好" in call.arguments
    assert json.loads(call.arguments) == {"customer_name": "你好啊集团"}


def test_structured_output_fills_schema() -> None:
    schema = {
        "type": "object",
        "properties": {
            "setup": {"type": "string"},
            "punchline": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "rating": {"type": "integer", "minimum": 1, "maximum": 10},
            "topic": {"type": "string", "enum": ["cats", "dogs"]},
        },
        "required": ["setup"],
    }
    value = json.loads(structured_output(schema, "Tell me a joke about cats."))
    assert set(value) == {"setup", "punchline", "rating", "topic"}
    assert isinstance(value["setup"], str) and value["setup"]
    assert 1 <= value["rating"] <= 10
    assert value["topic"] == "cats"


def test_json_object_uses_quoted_keys() -> None:
    prompt = "Return a JSON with 'setup' and 'punchline' keys about dogs."
    assert set(json.loads(json_object_output(prompt, "x"))) == {"setup", "punchline"}
    assert json.loads(json_object_output("Hello", "Hi there")) == {"answer": "Hi there"}


def test_emulator_imports_only_the_standard_library() -> None:
    import ast
    import sys
    from pathlib import Path

    import sfmodels_emulator as package

    for path in Path(package.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or top == "__future__", (path.name, name)


def test_a_forced_call_after_tool_results_goes_to_another_tool() -> None:
    from sfmodels_emulator.text.tool_calls import plan_tool_calls

    def tool(name: str, description: str) -> dict[str, object]:
        return {"type": "function", "function": {
            "name": name, "description": description,
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}

    tools = [tool("get_weather", "Weather in a city"), tool("Answer", "The final answer")]
    asked = [("user", "What is the weather in Paris?")]
    assert [p.name for p in plan_tool_calls(tools, "required", asked)] == ["get_weather"]
    answered = [*asked, ("assistant", ""), ("tool", "Sunny")]
    assert [p.name for p in plan_tool_calls(tools, "required", answered)] == ["Answer"]
    assert plan_tool_calls(tools, "auto", answered) == []


@pytest.mark.parametrize(
    ("system", "question", "expected"),
    [
        ("Paris is the capital of France.", "What is the capital of France?",
         "Paris is the capital of France."),
        ("Our office opens at 9am. Parking is free.", "When does the office open?",
         "Our office opens at 9am."),
        # Instructions to the model, and facts about something else, are not answers.
        ("You are an expert on France.", "What is the capital of France?", None),
        ("Berlin is the capital of Germany.", "What is the capital of France?", None),
    ],
)
def test_a_single_short_system_message_is_context(
    system: str, question: str, expected: str | None
) -> None:
    reply = generate_reply([("system", system), ("user", question)])
    if expected is None:
        assert reply == generate_reply([("user", question)])
    else:
        assert reply == expected
