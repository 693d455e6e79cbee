"""The public names of every package, pinned: removing or renaming one fails here first.

Each package's ``__init__`` and each public (not underscored) module of ``sfmodels_core``
declares its names in ``__all__``; the lists below are those names, sorted. A name added on
purpose is added here too; one that disappears by accident fails the test.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest

pytestmark = pytest.mark.disable_socket

PUBLIC = {
    "langchain_sfmodels": [
        "ChatDatabricks", "ChatSalesforce", "DatabricksEmbeddings", "DatabricksFeedbackHandler",
        "DatabricksLLM", "FeedbackSubmission", "ModelReplyError", "SFModelsError",
        "SalesforceEmbeddings", "SalesforceFeedbackHandler", "SalesforceLLM"],
    "llama_index_sfmodels": [
        "DatabricksEmbedding", "DatabricksFeedbackHandler", "DatabricksLLM", "FeedbackSubmission",
        "ModelReplyError", "SFModelsError", "SalesforceEmbedding", "SalesforceFeedbackHandler",
        "SalesforceLLM"],
    "sfmodels_spark": ["embed", "generate", "submit_feedback"],
    "sfmodels_emulator": ["Emulator"],
    "sfmodels_core": [
        "APIConnectionError", "APIStatusError", "APITimeoutError", "AuthenticationError",
        "BadRequestError", "BulkEmbeddingError", "ChatCompletion", "ChatCompletionChunk",
        "ChatResult", "ClientOptions", "Completion", "ConfigurationError", "DatabricksClient",
        "EmbeddingResult", "FeedbackResult", "GenerationResult", "IncompleteResponseError",
        "InvalidInputError", "ModelReplyError", "NotFoundError", "PermissionDeniedError",
        "RateLimitError", "ResponseValidationError", "RetryPolicy", "SFModelsError",
        "SalesforceClient", "ServerError", "ThrottleStats", "TokenError", "TokenExpiredError",
        "Usage", "Vectors",
        "defaults", "errors"],
    "sfmodels_core.auth": [
        "AsyncSender", "BearerAuth", "DatabricksM2M", "DatabricksSDKCredentials",
        "DatabricksTokenExchange", "SalesforceClientCredentials", "Sender", "ShippedToken",
        "StaticToken", "SubjectToken", "Token", "TokenSource", "jwt_claims",
        "salesforce_token_hint"],
    "sfmodels_core.bulk": [
        "ASend", "Batch", "BulkJob", "EmbedPlan", "EmbedRequest", "Retry", "Send", "WAIT",
        "arun_bulk", "check_resume", "is_transient", "names_size_limit", "refuses_single",
        "run_bulk", "should_split", "split", "texts_digest"],
    "sfmodels_core.credentials": [
        "DatabricksCredentials", "GENERIC_LOGIN_HOSTS", "OIDC_AUTH_TYPES", "OIDC_TOKEN_ENV",
        "OWN_AUTH_TYPES", "SDK_EXTRA",
        "SDK_ONLY_KEYS", "SalesforceCredentials", "Secret", "check_flag", "normalize_url",
        "profile_from_target_uri", "resolve_databricks", "resolve_salesforce", "secure_url"],
    "sfmodels_core.databricks": [
        "AssistantMessage", "ChatChoice", "ChatCompletion", "ChatCompletionChunk", "ChoiceDelta",
        "Completion", "CompletionChoice", "DatabricksClient", "StreamAccumulator", "ToolCall",
        "ToolCallDelta", "merge_chunks"],
    "sfmodels_core.databricks.models": [
        "AssistantMessage", "ChatChoice", "ChatCompletion", "ChatCompletionChunk", "ChoiceDelta",
        "Completion", "CompletionChoice", "ToolCall", "ToolCallDelta"],
    "sfmodels_core.defaults": [
        "ADAPTIVE", "ADAPTIVE_DECREASE", "ADAPTIVE_LOW_LIMIT", "ADAPTIVE_MIN_RATE",
        "ADAPTIVE_QPS_GROWTH", "ADAPTIVE_QPS_WINDOW", "ADAPTIVE_RATE_SIGNAL_CUTS",
        "ADAPTIVE_RATE_SIGNAL_SHARE", "ADAPTIVE_RATE_WINDOW", "ASYNC_HTTP",
        "BULK_NO_PROGRESS_TIMEOUT", "BULK_SPLIT_AFTER", "BULK_SPLIT_AFTER_ANYWAY",
        "CONNECT_TIMEOUT", "DATABRICKS_CHAT_ENDPOINT", "DATABRICKS_EMBEDDING_ENDPOINT",
        "DATABRICKS_EMBED_BATCH_SIZE", "DATABRICKS_SDK_HEADERS_TTL", "DATABRICKS_SDK_PROBE_TIMEOUT",
        "DATABRICKS_TOKEN_LIFETIME", "EMBED_MAX_CONCURRENCY", "FEEDBACK_MAX_RUNS",
        "INITIAL_BACKOFF", "MAX_BACKOFF", "MAX_BODY_BYTES", "MAX_CONNECTIONS", "MAX_EVENT_BYTES",
        "MAX_RETRIES", "MAX_RETRY_AFTER", "MIN_RETRY_DELAY", "RATE_WINDOW_MARGIN",
        "SALESFORCE_API_BASE", "SALESFORCE_CHAT_MODEL", "SALESFORCE_EMBEDDING_MODEL",
        "SALESFORCE_EMBED_BATCH_SIZE", "SALESFORCE_REQUESTS_PER_MINUTE",
        "SALESFORCE_TOKEN_LIFETIME", "SALESFORCE_TRIAL_GENERATIONS_PER_HOUR",
        "SHIPPED_TOKEN_MARGIN", "TIMEOUT", "TOKEN_REFRESH_MARGIN"],
    "sfmodels_core.errors": [
        "APIConnectionError", "APIStatusError", "APITimeoutError", "AuthenticationError",
        "BadRequestError", "BulkEmbeddingError", "ConfigurationError", "ErrorDetails",
        "IncompleteResponseError", "InvalidInputError", "ModelReplyError", "NotFoundError",
        "PermissionDeniedError", "RETRYABLE_STATUSES", "RateLimitError", "ResponseValidationError",
        "SFModelsError", "ServerError", "TokenError", "TokenExpiredError",
        "error_class_for_status", "is_retryable_status"],
    "sfmodels_core.integration": [],
    "sfmodels_core.integration.batch": [],
    "sfmodels_core.integration.batch.budget": ["parallel_tasks", "per_task_rate"],
    "sfmodels_core.integration.batch.connection": [
        "Client", "Connection", "MAX_CLIENTS", "PROVIDERS", "Provider", "SETTINGS", "Tracking",
        "check_provider", "client_for", "make_client", "resolve", "ship"],
    "sfmodels_core.integration.batch.rows": [
        "Answer", "ChatSpec", "Client", "FEEDBACK_NAMESPACE", "JOB_ERRORS", "MAX_ERROR",
        "MLFLOW_JOB_CODES", "ROUNDS_PER_CALL", "assessment_rows", "chat_one", "describe", "each",
        "each_at", "embed_rows", "feedback_id", "feedback_rows", "generate_rows", "messages_for",
        "rating_value", "text_problem"],
    "sfmodels_core.integration.feedback": [
        "FeedbackSubmission", "GenerationLog", "GenerationRecord", "RATINGS", "asubmit",
        "feedback_requests", "normalize_rating", "submit"],
    "sfmodels_core.integration.mlflow_feedback": [
        "Assessment", "FEEDBACK_ID_KEY", "FEEDBACK_NAME", "MLFLOW_EXTRA", "end_generation_span",
        "feedback_key", "feedback_value", "log_feedback", "named_record", "require_mlflow",
        "start_generation_span"],
    "sfmodels_core.integration.fields": [
        "ClientFields", "ClientSlot", "DatabricksClientFields", "SalesforceClientFields",
        "refuse_unknown_options"],
    "sfmodels_core.integration.salesforce": [
        "AsyncChatFn", "ChatFn", "SalesforceAnswer", "SalesforceChat", "UNSUPPORTED_PARAMS",
        "apply_stop", "choose_protocol", "read_answer", "reply_protocol", "response_format_schema",
        "stop_list", "warn_unsupported"],
    "sfmodels_core.integration.tokens": [
        "MESSAGE_OVERHEAD", "REPLY_PRIMING", "count_message_tokens", "count_tokens"],
    "sfmodels_core.tools": [
        "MODES", "check_tool_choice", "check_tools", "function_names", "function_of",
        "normalize_tool_choice", "wire_tool_choice"],
    "sfmodels_core.options": ["ASYNC_HTTP", "ClientOptions", "RetryPolicy"],
    "sfmodels_core.salesforce": [
        "ChatResult", "ContentQuality", "FeedbackResult", "FeedbackValue", "Generation",
        "GenerationResult", "SalesforceClient"],
    "sfmodels_core.salesforce.models": [
        "ChatResult", "ContentQuality", "FeedbackResult", "FeedbackValue", "Generation",
        "GenerationResult"],
    "sfmodels_core.tool_protocol": [
        "ANSWER_KEY", "CALLS_KEY", "CUT_OFF", "Conversation", "InvalidProtocolCall", "JSONReply",
        "JSON_HEADER", "NOT_JSON", "ONE_CALL_ERROR", "Outcome", "Protocol", "ProtocolCall",
        "RESULT_PREFIX", "Reading", "TOOLS_HEADER", "ToolReply", "ToolSpec", "answer_text", "arun",
        "find_json", "json_instructions", "json_protocol", "parse_json_reply", "parse_tool_reply",
        "read_tool_reply", "render_history", "repair_messages", "run", "tool_instructions",
        "tools_protocol"],
    "sfmodels_core.types": ["EmbeddingResult", "ParsedBatch", "Usage", "expect_vectors", "ordered"],
    "sfmodels_core.vectors": [
        "BadVector", "ITEM_SIZE", "MISSING", "StoredRows", "VectorCheck", "VectorSink", "Vectors",
        "as_list", "as_lists", "check_float32", "check_list", "decode_base64", "dimension_problem",
        "encode_base64", "list_problem", "may_hold_bools", "nonfinite", "read_base64"],
}
#: Packages whose every public module must declare ``__all__``.
DECLARED = ("sfmodels_core", "langchain_sfmodels", "llama_index_sfmodels", "sfmodels_spark")


def public_modules(package: str) -> list[str]:
    """``package`` and its modules whose names have no part starting with an underscore."""
    root = importlib.import_module(package)
    return [package, *(m.name for m in pkgutil.walk_packages(root.__path__, f"{package}.")
                       if not any(part.startswith("_") for part in m.name.split(".")[1:]))]


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_the_public_names_are_the_pinned_ones(module: str) -> None:
    loaded = importlib.import_module(module)
    assert sorted(loaded.__all__) == PUBLIC[module]
    assert [name for name in loaded.__all__ if not hasattr(loaded, name)] == []


def test_every_public_core_module_is_pinned() -> None:
    assert [m for m in public_modules("sfmodels_core") if m not in PUBLIC] == []


@pytest.mark.parametrize("package", DECLARED)
def test_every_public_module_declares_its_names(package: str) -> None:
    missing = [m for m in public_modules(package)
               if "__all__" not in vars(importlib.import_module(m))]
    assert missing == []


def test_the_core_exports_every_error_class() -> None:
    import sfmodels_core
    from sfmodels_core import errors

    raised = [name for name in errors.__all__ if isinstance(getattr(errors, name), type)
              and issubclass(getattr(errors, name), BaseException)]
    assert [name for name in raised if name not in sfmodels_core.__all__] == []
    assert all(getattr(sfmodels_core, name) is getattr(errors, name) for name in raised)
