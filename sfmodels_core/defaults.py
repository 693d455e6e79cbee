"""Every default value of sfmodels, in one place, importable without loading any HTTP code.

The clients, both framework packages and the command line read their defaults from here; none
writes a default of its own.
"""

from __future__ import annotations

# -- models and endpoints -------------------------------------------------------------------------
SALESFORCE_CHAT_MODEL = "sfdc_ai__DefaultOpenAIGPT4OmniMini"
SALESFORCE_EMBEDDING_MODEL = "sfdc_ai__DefaultOpenAITextEmbeddingAda_002"
SALESFORCE_API_BASE = "https://api.salesforce.com/einstein/platform/v1"
DATABRICKS_CHAT_ENDPOINT = "databricks-meta-llama-3-3-70b-instruct"
DATABRICKS_EMBEDDING_ENDPOINT = "databricks-gte-large-en"

# -- transport ------------------------------------------------------------------------------------
#: Seconds to wait for each HTTP request.
TIMEOUT = 60.0
#: Seconds to wait for a connection (and TLS handshake) to open: short, so that a wrong host or
#: scheme fails fast rather than after every retry of the full timeout.
CONNECT_TIMEOUT = 10.0
#: Retries of one request after a retryable status or a connection error (so at most 4 sends).
MAX_RETRIES = 3
#: Backoff before retry n: up to INITIAL_BACKOFF * 2**(n-1), capped at MAX_BACKOFF, jittered.
INITIAL_BACKOFF = 0.5
MAX_BACKOFF = 8.0
#: The least wait before a retry, whatever Retry-After says ("0" included).
MIN_RETRY_DELAY = 0.05
#: A Retry-After longer than this is not waited for: the call fails with the error instead.
MAX_RETRY_AFTER = 60.0
#: Connections per client (the async side splits them into shards of 10).
MAX_CONNECTIONS = 100

# -- bulk embeddings ------------------------------------------------------------------------------
#: The Models API's maximum texts per embeddings request is not documented: stay conservative.
SALESFORCE_EMBED_BATCH_SIZE = 16
DATABRICKS_EMBED_BATCH_SIZE = 150
#: Batches in flight at once for one bulk call.
EMBED_MAX_CONCURRENCY = 4

# -- tokens ---------------------------------------------------------------------------------------
#: Salesforce's documented token lifetime, used when the token carries no expiry.
SALESFORCE_TOKEN_LIFETIME = 30 * 60.0
#: Databricks OAuth M2M tokens last an hour when the answer does not say.
DATABRICKS_TOKEN_LIFETIME = 3600.0
#: Tokens are refreshed a tenth of their lifetime early, at most this many seconds early.
TOKEN_REFRESH_MARGIN = 60.0
#: How long headers from databricks-sdk are reused when their token shows no expiry (the SDK
#: caches and refreshes on its own: asking it again is cheap, and lets it decide).
DATABRICKS_SDK_HEADERS_TTL = 60.0
#: Seconds databricks-sdk may spend on its best-effort probe of a workspace's discovery document
#: while finding credentials (its own default, 300 s, would stall a client built for a host that
#: cannot be reached); unless DATABRICKS_RETRY_TIMEOUT_SECONDS says otherwise.
DATABRICKS_SDK_PROBE_TIMEOUT = 5

# -- feedback -------------------------------------------------------------------------------------
#: Runs whose Salesforce generation ids a feedback handler remembers.
FEEDBACK_MAX_RUNS = 1000
