"""What the emulated services serve: Salesforce's model catalogue and the extra Databricks
endpoints whose real-world response shapes differ from the defaults.

Salesforce: the official supported-models table (Bedrock Anthropic and Amazon, OpenAI/Azure,
Vertex Gemini, and the two Ada-002 embedding models). An org's configured (Einstein Studio) and
BYOLLM models have API names of their own: the ``configured_models`` setting maps any such name
to the catalogue model it is built on.

Databricks: endpoints that answer, by default, in the shape their real counterparts use (see the
``DATABRICKS_SHAPES`` table); ``model_settings`` overrides any of it per endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SalesforceModel:
    name: str
    kind: str  # "chat" or "embedding"
    served_model: str
    provider: str  # as ``parameters.provider`` reports it


def _models(*rows: tuple[str, str, str, str]) -> dict[str, SalesforceModel]:
    return {name: SalesforceModel(name, kind, served, provider)
            for name, kind, served, provider in rows}


P = "sfdc_ai__Default"
SALESFORCE_MODELS: dict[str, SalesforceModel] = _models(
    # Anthropic Claude on Amazon Bedrock
    (P + "BedrockAnthropicClaude3Haiku", "chat", "claude-3-haiku-20240307", "Bedrock"),
    (P + "BedrockAnthropicClaude37Sonnet", "chat", "claude-3-7-sonnet-20250219", "Bedrock"),
    (P + "BedrockAnthropicClaude4Sonnet", "chat", "claude-sonnet-4-20250514", "Bedrock"),
    (P + "BedrockAnthropicClaude45Haiku", "chat", "claude-haiku-4-5-20251001", "Bedrock"),
    (P + "BedrockAnthropicClaude45Sonnet", "chat", "claude-sonnet-4-5-20250929", "Bedrock"),
    # Amazon Nova on Bedrock
    (P + "BedrockAmazonNovaLite", "chat", "amazon.nova-lite-v1:0", "Bedrock"),
    (P + "BedrockAmazonNovaPro", "chat", "amazon.nova-pro-v1:0", "Bedrock"),
    # OpenAI and Azure OpenAI
    (P + "GPT4Omni", "chat", "gpt-4o-2024-08-06", "AzureOpenAI"),
    (P + "GPT4OmniMini", "chat", "gpt-4o-mini-2024-07-18", "AzureOpenAI"),
    (P + "OpenAIGPT4OmniMini", "chat", "gpt-4o-mini-2024-07-18", "OpenAI"),
    (P + "GPT41", "chat", "gpt-4.1-2025-04-14", "AzureOpenAI"),
    (P + "GPT41Mini", "chat", "gpt-4.1-mini-2025-04-14", "AzureOpenAI"),
    (P + "GPT5", "chat", "gpt-5-2025-08-07", "AzureOpenAI"),
    (P + "GPT5Mini", "chat", "gpt-5-mini-2025-08-07", "AzureOpenAI"),
    (P + "GPT51", "chat", "gpt-5.1-2025-11-13", "AzureOpenAI"),
    (P + "O3", "chat", "o3-2025-04-16", "AzureOpenAI"),
    (P + "O4Mini", "chat", "o4-mini-2025-04-16", "AzureOpenAI"),
    # Google Gemini on Vertex AI
    (P + "VertexAIGemini20Flash001", "chat", "gemini-2.0-flash-001", "VertexAI"),
    (P + "VertexAIGemini20FlashLite001", "chat", "gemini-2.0-flash-lite-001", "VertexAI"),
    (P + "VertexAIGemini25Flash001", "chat", "gemini-2.5-flash", "VertexAI"),
    (P + "VertexAIGemini25FlashLite001", "chat", "gemini-2.5-flash-lite", "VertexAI"),
    (P + "VertexAIGeminiPro25", "chat", "gemini-2.5-pro", "VertexAI"),
    # Embeddings
    (P + "OpenAITextEmbeddingAda_002", "embedding", "text-embedding-ada-002-v2", "OpenAI"),
    (P + "AzureOpenAITextEmbeddingAda_002", "embedding", "text-embedding-ada-002-v2",
     "AzureOpenAI"),
)


def salesforce_model(name: str, configured: dict[str, str]) -> SalesforceModel | None:
    """The catalogue model ``name`` is, or is configured on; ``None`` when the org has none."""
    model = SALESFORCE_MODELS.get(name)
    if model is not None:
        return model
    base = configured.get(name)
    if base is None:
        return None
    model = SALESFORCE_MODELS[base]
    return SalesforceModel(name, model.kind, model.served_model, model.provider)


# Databricks endpoints beyond the defaults: (name, task, served model).
DATABRICKS_ENDPOINTS: tuple[tuple[str, str, str], ...] = (
    ("databricks-claude-sonnet-4", "chat", "claude-sonnet-4-20250514"),
    ("databricks-gpt-5", "chat", "gpt-5-2025-08-07"),
    ("databricks-gemini-2-5-flash", "chat", "gemini-2.5-flash"),
    ("databricks-gpt-oss-20b", "chat", "gpt-oss-20b-080525"),
    ("openai-gpt-4o", "chat", "gpt-4o-2024-08-06"),
    ("custom-pyfunc-chat", "chat", "custom-pyfunc-chat"),
)

#: The response shapes an endpoint uses unless ``model_settings`` says otherwise (the global
#: settings apply to every endpoint not listed, and to every setting an endpoint leaves out).
DATABRICKS_SHAPES: dict[str, dict[str, Any]] = {
    # Claude: usage on every chunk, completion_tokens null until the last.
    "databricks-claude-sonnet-4": {"usage_mode": "null_until_last"},
    # GPT-5: usage alone in a final chunk with "choices": [].
    "databricks-gpt-5": {"usage_mode": "final_chunk"},
    # Gemini: streamed tool calls without an "index".
    "databricks-gemini-2-5-flash": {"tool_call_index": False},
    # A reasoning model: content is a list of parts, reasoning then text.
    "databricks-gpt-oss-20b": {"reasoning": True},
    # An external-model endpoint (OpenAI through Databricks): usage in a stream only when the
    # request sets stream_options.include_usage; the provider's errors wrapped in the message.
    "openai-gpt-4o": {"usage_mode": "on_request", "error_shape": "external_model"},
    # A custom pyfunc endpoint: answers stream=true with one ordinary JSON body.
    "custom-pyfunc-chat": {"stream_format": "json"},
}


__all__ = [
    "DATABRICKS_ENDPOINTS",
    "DATABRICKS_SHAPES",
    "SALESFORCE_MODELS",
    "SalesforceModel",
    "salesforce_model",
]
