"""Model names, tools and message helpers shared by the emulator tests."""

from __future__ import annotations

from typing import Any

SALESFORCE_CHAT_MODEL = "sfdc_ai__DefaultOpenAIGPT4OmniMini"
SALESFORCE_EMBEDDING_MODEL = "sfdc_ai__DefaultOpenAITextEmbeddingAda_002"
DATABRICKS_CHAT = "databricks-meta-llama-3-3-70b-instruct"
DATABRICKS_EMBEDDINGS = "databricks-gte-large-en"

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather at a location.",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string", "description": "City name"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
            },
            "required": ["location"],
        },
    },
}
CALCULATOR_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "multiply",
        "description": "Multiply two numbers.",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
            "required": ["a", "b"],
        },
    },
}


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]
