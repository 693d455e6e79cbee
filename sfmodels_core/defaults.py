"""Default model names, endpoints and sizes, importable without loading any HTTP code."""

from __future__ import annotations

SALESFORCE_CHAT_MODEL = "sfdc_ai__DefaultOpenAIGPT4OmniMini"
SALESFORCE_EMBEDDING_MODEL = "sfdc_ai__DefaultOpenAITextEmbeddingAda_002"
SALESFORCE_API_BASE = "https://api.salesforce.com/einstein/platform/v1"
#: The service's maximum texts per embeddings request is not documented: stay conservative.
SALESFORCE_EMBED_BATCH_SIZE = 16

DATABRICKS_CHAT_ENDPOINT = "databricks-meta-llama-3-3-70b-instruct"
DATABRICKS_EMBEDDING_ENDPOINT = "databricks-gte-large-en"
DATABRICKS_EMBED_BATCH_SIZE = 150

EMBED_MAX_CONCURRENCY = 4
