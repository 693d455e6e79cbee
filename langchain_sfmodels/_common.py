"""Pure helpers every LangChain class of this package shares: usage, tracing, tools.

Shared by the sync and async paths of every class: the classes only add I/O around them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any, ClassVar, Literal, cast

from langchain_core.language_models import LangSmithParams
from langchain_core.messages import BaseMessage
from pydantic import BaseModel

from sfmodels_core.integration.tokens import count_message_tokens, count_tokens

if TYPE_CHECKING:
    from langchain_core.messages.ai import UsageMetadata
    from langchain_core.runnables import Runnable

    from sfmodels_core.types import Usage

SALESFORCE = "salesforce"
DATABRICKS = "databricks"


class ModelBasics(BaseModel):
    """What every model class of this package has besides its provider's settings: not
    serializable by LangChain (secrets and clients), token counts, and batch outputs."""

    #: What LangSmith traces call this kind of model ("llm" for the text-completion classes).
    _LS_MODEL_TYPE: ClassVar[Literal["chat", "llm"]] = "chat"

    model: str

    @classmethod
    def is_lc_serializable(cls) -> bool:
        return False

    def get_num_tokens(self, text: str) -> int:
        """Tokens in ``text``: exact for OpenAI models when tiktoken is installed, otherwise
        an estimate that errs high (no tokenizer download; see
        ``sfmodels_core.integration.tokens``)."""
        return count_tokens(text, self.model)

    def get_num_tokens_from_messages(self, messages: list[BaseMessage],
                                     tools: Sequence[Any] | None = None) -> int:
        """Tokens of a history, as ``trim_messages(token_counter=model)`` asks; tool calls and
        bound tools count as their JSON."""
        texts = [message.text + "".join(json.dumps(call) for call in getattr(
            message, "tool_calls", ())) for message in messages]
        texts.extend(json.dumps(tool, default=str) for tool in tools or ())
        return count_message_tokens(texts, self.model)

    def _combine_llm_outputs(self, llm_outputs: list[dict[str, Any] | None]) -> dict[str, Any]:
        return combine_llm_outputs(llm_outputs)


def langsmith_params(provider: str, model_type: Literal["chat", "llm"], model: str,
                     stop: Sequence[str] | None,
                     kwargs: Mapping[str, Any], *, temperature: Any = None,
                     max_tokens: Any = None) -> LangSmithParams:
    """What LangSmith traces show of a call: a per-call ``model``/``endpoint`` wins, and
    ``temperature``/``max_tokens`` only where they are really sent (Databricks)."""
    params = LangSmithParams(ls_provider=provider, ls_model_type=model_type,
                             ls_model_name=kwargs.get("model") or kwargs.get("endpoint") or model)
    temperature = kwargs.get("temperature", temperature)
    if isinstance(temperature, (int, float)) and provider == DATABRICKS:
        params["ls_temperature"] = temperature
    max_tokens = kwargs.get("max_tokens", max_tokens)
    if isinstance(max_tokens, int) and provider == DATABRICKS:
        params["ls_max_tokens"] = max_tokens
    if stop:
        params["ls_stop"] = list(stop)
    return params


def usage_metadata(usage: Usage | None) -> UsageMetadata | None:
    """LangChain usage from the core's token counts (cache counts when the service gives them);
    None when the service reported none (never zeros presented as counts)."""
    if usage is None:
        return None
    out: dict[str, Any] = {"input_tokens": usage.prompt_tokens,
                           "output_tokens": usage.completion_tokens,
                           "total_tokens": usage.total_tokens}
    extra = usage.model_extra or {}
    details = {key: extra[wire] for wire, key in (("cache_read_input_tokens", "cache_read"),
                                                  ("cache_creation_input_tokens",
                                                   "cache_creation"))
               if isinstance(extra.get(wire), int)}
    if details:
        out["input_token_details"] = details
    return cast("UsageMetadata", out)


def usage_dict(usage: Usage | None) -> dict[str, int] | None:
    if usage is None:
        return None
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens}


def llm_output(model: str, served: str | None, usage: Usage | None,
               ident: str | None = None) -> dict[str, Any]:
    return {"model_name": model, "served_model": served, "token_usage": usage_dict(usage),
            "id": ident}


def combine_llm_outputs(outputs: Sequence[Mapping[str, Any] | None]) -> dict[str, Any]:
    """One ``llm_output`` for a batch: token usage summed, the rest from the first output."""
    from sfmodels_core.types import Usage

    combined: dict[str, Any] = {}
    for output in outputs:
        for key, value in (output or {}).items():
            combined.setdefault(key, value)
    total = Usage.total(Usage.from_wire(output.get("token_usage")) for output in outputs
                        if output)
    combined["token_usage"] = usage_dict(total)
    combined.pop("id", None)  # one response id does not describe a batch
    return combined


def tool_options(tools: Sequence[Any], tool_choice: Any, strict: bool | None,
                 kwargs: dict[str, Any]) -> dict[str, Any]:
    """What ``bind_tools`` binds on both chat models: the tools in OpenAI format and the
    ``tool_choice`` in its wire form (any spelling LangChain users pass)."""
    from langchain_core.utils.function_calling import convert_to_openai_tool

    from sfmodels_core.tools import wire_tool_choice

    formatted = [convert_to_openai_tool(tool, strict=strict) for tool in tools]
    if tool_choice is not None:
        names = [tool["function"]["name"] for tool in formatted]
        kwargs = {**kwargs, "tool_choice": wire_tool_choice(tool_choice, names)}
    return {**kwargs, "tools": formatted}


def with_raw(bound: Runnable[Any, Any], parser: Runnable[Any, Any]) -> Runnable[Any, Any]:
    """``with_structured_output(include_raw=True)``: ``{"raw", "parsed", "parsing_error"}``."""
    from langchain_core.runnables import RunnableMap, RunnablePassthrough

    parsed = RunnablePassthrough.assign(parsed=itemgetter("raw") | parser,
                                        parsing_error=lambda _: None)
    failed = RunnablePassthrough.assign(parsed=lambda _: None)
    return RunnableMap(raw=bound) | parsed.with_fallbacks([failed],
                                                          exception_key="parsing_error")
