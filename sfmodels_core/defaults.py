"""Every default value of sfmodels, in one place, importable without loading any HTTP code.

The clients, both framework packages and the command line read their defaults from here; none
writes a default of its own.
"""

from __future__ import annotations

__all__ = [
    "ADAPTIVE",
    "ADAPTIVE_DECREASE",
    "ADAPTIVE_LOW_LIMIT",
    "ADAPTIVE_MIN_RATE",
    "ADAPTIVE_QPS_GROWTH",
    "ADAPTIVE_QPS_WINDOW",
    "ADAPTIVE_RATE_SIGNAL_CUTS",
    "ADAPTIVE_RATE_SIGNAL_SHARE",
    "ADAPTIVE_RATE_WINDOW",
    "ASYNC_HTTP",
    "BULK_NO_PROGRESS_TIMEOUT",
    "BULK_SPLIT_AFTER",
    "BULK_SPLIT_AFTER_ANYWAY",
    "CONNECT_TIMEOUT",
    "DATABRICKS_CHAT_ENDPOINT",
    "DATABRICKS_EMBEDDING_ENDPOINT",
    "DATABRICKS_EMBED_BATCH_SIZE",
    "DATABRICKS_SDK_HEADERS_TTL",
    "DATABRICKS_SDK_PROBE_TIMEOUT",
    "DATABRICKS_TOKEN_LIFETIME",
    "EMBED_MAX_CONCURRENCY",
    "FEEDBACK_MAX_RUNS",
    "INITIAL_BACKOFF",
    "MAX_BACKOFF",
    "MAX_BODY_BYTES",
    "MAX_CONNECTIONS",
    "MAX_EVENT_BYTES",
    "MAX_RETRIES",
    "MAX_RETRY_AFTER",
    "MIN_RETRY_DELAY",
    "RATE_WINDOW_MARGIN",
    "SALESFORCE_API_BASE",
    "SALESFORCE_CHAT_MODEL",
    "SALESFORCE_EMBEDDING_MODEL",
    "SALESFORCE_EMBED_BATCH_SIZE",
    "SALESFORCE_REQUESTS_PER_MINUTE",
    "SALESFORCE_TOKEN_LIFETIME",
    "SALESFORCE_TRIAL_GENERATIONS_PER_HOUR",
    "SHIPPED_TOKEN_MARGIN",
    "TIMEOUT",
    "TOKEN_REFRESH_MARGIN",
]

# -- models and endpoints -------------------------------------------------------------------------
SALESFORCE_CHAT_MODEL = "sfdc_ai__DefaultOpenAIGPT4OmniMini"
SALESFORCE_EMBEDDING_MODEL = "sfdc_ai__DefaultOpenAITextEmbeddingAda_002"
SALESFORCE_API_BASE = "https://api.salesforce.com/einstein/platform/v1"
DATABRICKS_CHAT_ENDPOINT = "databricks-meta-llama-3-3-70b-instruct"
DATABRICKS_EMBEDDING_ENDPOINT = "databricks-gte-large-en"

# -- transport ------------------------------------------------------------------------------------
#: Seconds one attempt of a request may take, whole, however its answer trickles in; for a
#: stream, the most each read and each wait for the next event may take.
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
#: The most one server-sent event (or one line of one) may hold, and the most a streaming
#: request answered with one JSON body may send: past it the answer is refused, not buffered.
MAX_EVENT_BYTES = 16 * 2**20
#: The most a non-streaming answer's body may hold: a chat answer is kilobytes, a batch of
#: 2,048 embeddings of 3,072 dimensions as JSON about 80 to 120 MB; a larger body is refused
#: as it arrives (lower batch_size for larger batches of larger vectors).
MAX_BODY_BYTES = 128 * 2**20
#: Connections per client (the async side gives each its own httpx client).
MAX_CONNECTIONS = 100
#: What sends async requests: "httpx", or "aiohttp" (the sfmodels[aiohttp] extra), which costs
#: less CPU per call when many calls are in flight.
ASYNC_HTTP = "httpx"

# -- bulk embeddings ------------------------------------------------------------------------------
#: The Models API's maximum texts per embeddings request is not documented: stay conservative.
SALESFORCE_EMBED_BATCH_SIZE = 16
DATABRICKS_EMBED_BATCH_SIZE = 150
#: Batches in flight at once for one bulk call.
EMBED_MAX_CONCURRENCY = 4
#: A batch refused with 429 this many times in a row, while no batch as large has succeeded in
#: the job, is split in halves (a limit on inputs or tokens per request, not on requests).
BULK_SPLIT_AFTER = 3
#: ... and this many times in a row even while batches as large succeed (its texts are long).
BULK_SPLIT_AFTER_ANYWAY = 8
#: A bulk call gives up once nothing has succeeded for this long; by default (None) it is
#: ``(max_retries + 1) * timeout``: as long as one call may take with every attempt timing out.
#: A single call waiting for the client's pace (see ADAPTIVE_RATE_SIGNAL_CUTS) stops waiting
#: after as long.
BULK_NO_PROGRESS_TIMEOUT: float | None = None

# -- adaptive concurrency -------------------------------------------------------------------------
#: On by default: a 429 cuts the requests in flight for the whole client, successes grow it back.
ADAPTIVE = True
#: On a 429 the limit becomes this share of the requests in flight (at least 1)...
ADAPTIVE_DECREASE = 0.5
#: ... and each success while the limit is reached adds 1/limit (about +1 per round of requests).
#: A 429 with Retry-After also paces requests at ADAPTIVE_DECREASE times the rate they were sent
#: at over this many seconds before it (then +1 request/s per second while calls wait)...
ADAPTIVE_RATE_WINDOW = 2.0
#: ... never slower than this many requests a second.
ADAPTIVE_MIN_RATE = 0.1
#: 429s without Retry-After show a rate limit too (Databricks' workspace QPS limit sends none)
#: when this many cut the limit in a row: each within ADAPTIVE_RATE_WINDOW of the last, with
#: most requests answered since the last refused (ADAPTIVE_RATE_SIGNAL_SHARE), the limit not
#: grown back in between past what the last cut left (or past ADAPTIVE_LOW_LIMIT), and some
#: request answered in the window: halving concurrency then finds no level the service
#: accepts. A concurrency limit keeps accepting its share every round, and random refusals are
#: a small share; a service refusing everything (or one batch for its size) shows no rate.
ADAPTIVE_RATE_SIGNAL_CUTS = 3
ADAPTIVE_RATE_SIGNAL_SHARE = 0.75
#: ... a limit this low may be cut again and again: a few requests in flight make many a second.
ADAPTIVE_LOW_LIMIT = 4
#: Such a limit is taken to count the requests of each second. Pacing starts at half the rate
#: sent (or at the rate answered of what was sent since the run began, if more), after every
#: request pauses this long so that the service's window empties; a later 429 without
#: Retry-After halves the pace no lower than what was answered over the last such window
#: (since the pause, if later): the limit accepts that much.
ADAPTIVE_QPS_WINDOW = 1.0
#: ... and so the pace may grow faster than after a Retry-After: each answer while calls wait
#: for it adds this much to it (about a tenth of itself a second) when that is more than 1/pace.
ADAPTIVE_QPS_GROWTH = 0.1

# -- documented service limits --------------------------------------------------------------------
#: Salesforce Models API, production orgs: requests per minute per org, per endpoint. The client
#: keeps under them by default (no more in any minute) unless ``requests_per_minute`` is set.
SALESFORCE_REQUESTS_PER_MINUTE = {
    "embeddings": 1_000,
    "feedback": 1_000,
    "chat-generations": 10_000,
    "generations": 10_000,
}
#: Free and trial orgs: generation requests per hour. Not enforced client-side (the client cannot
#: tell a trial org); a 429 asking to wait longer than a minute is reported as an hourly limit.
SALESFORCE_TRIAL_GENERATIONS_PER_HOUR = 150
#: Seconds added to each one-minute window on the client side, so that requests arriving late or
#: early at the service never put more than the limit in one of its minutes.
RATE_WINDOW_MARGIN = 1.0

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
#: A token shipped to workers (``ship_token=True``) is not sent within this many seconds of its
#: expiry: it could expire on the way, and the workers' clocks may run ahead of the driver's.
SHIPPED_TOKEN_MARGIN = 60.0
#: Seconds databricks-sdk may spend on its best-effort probe of a workspace's discovery document
#: while finding credentials (its own default, 300 s, would stall a client built for a host that
#: cannot be reached); unless DATABRICKS_RETRY_TIMEOUT_SECONDS says otherwise.
DATABRICKS_SDK_PROBE_TIMEOUT = 5

# -- feedback -------------------------------------------------------------------------------------
#: Runs whose Salesforce generation ids a feedback handler remembers.
FEEDBACK_MAX_RUNS = 1000

