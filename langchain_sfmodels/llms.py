"""Text-completion models: ``SalesforceLLM`` (generations) and ``DatabricksLLM`` (completions)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseLLM, LangSmithParams
from langchain_core.outputs import Generation, GenerationChunk, LLMResult
from pydantic import ConfigDict, Field, field_validator

from ._messages import DATABRICKS, SALESFORCE, langsmith_params, usage_dict
from ._settings import DatabricksSettings, SalesforceSettings
from .chat_databricks import RESERVED_BODY_KEYS, generation_params
from .chat_salesforce import DEFAULT_CHAT_MODEL, prepare_call

if TYPE_CHECKING:
    from sfmodels_core.databricks import Completion
    from sfmodels_core.salesforce import GenerationResult
    from sfmodels_core.types import Usage


def _add_usage(total: dict[str, int] | None, usage: Usage | None) -> dict[str, int] | None:
    part = usage_dict(usage)
    if part is None:
        return total
    if total is None:
        return part
    return {key: total.get(key, 0) + value for key, value in part.items()}


# -- Salesforce -----------------------------------------------------------------------------------
def _salesforce_generation(result: GenerationResult, model: str,
                           stop: Sequence[str] | None) -> Generation:
    from sfmodels_core.adapters import apply_stop

    first = result.generations[0] if result.generations else None
    text, _ = apply_stop(first.text if first else "", stop)
    quality = first.content_quality if first else None
    return Generation(text=text, generation_info={
        "id": result.id,
        "generation_id": first.id if first else None,
        "model_name": model,
        "served_model": result.model,
        "finish_reason": first.finish_reason if first else None,
        "content_quality": quality.model_dump() if quality else None,
        "model_provider": SALESFORCE,
    })


class SalesforceLLM(SalesforceSettings, BaseLLM):
    """Text generation with the Salesforce Models API ``generations`` endpoint.

    Same settings as ``ChatSalesforce``. Each generation's ``generation_info`` holds the
    Salesforce ``generation_id`` (what feedback refers to), ``id``, ``model_name``,
    ``served_model``, ``finish_reason`` and ``content_quality``. ``stop`` is enforced on the
    client; ``temperature``/``max_tokens`` are accepted, not sent, and warned about once.
    """

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True,
                              extra="forbid", protected_namespaces=())

    model: str = DEFAULT_CHAT_MODEL
    """Model API name."""
    temperature: float | None = None
    """Accepted for compatibility and not sent (warned once): configure it in Einstein Studio."""
    max_tokens: int | None = None
    """Accepted for compatibility and not sent (warned once): configure it in Einstein Studio."""
    stop: list[str] | None = None
    """Stop sequences, applied to the answer on the client."""
    localization: dict[str, Any] | None = None
    """The API's ``localization`` object."""
    salesforce_tags: dict[str, Any] | None = None
    """The API's free-form ``tags`` object."""

    @property
    def _llm_type(self) -> str:
        return "salesforce"

    @classmethod
    def is_lc_serializable(cls) -> bool:
        return False

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.model, "stop": self.stop}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return langsmith_params(SALESFORCE, "llm", self.model,
                                stop if stop is not None else self.stop, kwargs)

    @staticmethod
    def _result(generations: list[Generation], results: list[GenerationResult],
                model: str) -> LLMResult:
        usage: dict[str, int] | None = None
        for result in results:
            usage = _add_usage(usage, result.usage)
        return LLMResult(generations=[[g] for g in generations],
                         llm_output={"model_name": model, "token_usage": usage})

    def _generate(self, prompts: list[str], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None,
                  **kwargs: Any) -> LLMResult:
        model, options, stop = prepare_call(self, stop, kwargs)
        results = [self._salesforce.generate(model, prompt, **options) for prompt in prompts]
        return self._result([_salesforce_generation(r, model, stop) for r in results], results,
                            model)

    async def _agenerate(self, prompts: list[str], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None,
                         **kwargs: Any) -> LLMResult:
        model, options, stop = prepare_call(self, stop, kwargs)
        results = [await self._salesforce.agenerate(model, prompt, **options)
                   for prompt in prompts]
        return self._result([_salesforce_generation(r, model, stop) for r in results], results,
                            model)


# -- Databricks -----------------------------------------------------------------------------------
def _completion_generations(completion: Completion, model: str) -> list[Generation]:
    return [Generation(text=choice.text, generation_info={
        "finish_reason": choice.finish_reason, "id": completion.id, "model_name": model,
        "served_model": completion.model, "model_provider": DATABRICKS})
        for choice in completion.choices]


class _CompletionStream:
    """The core's completion pieces as LangChain chunks; metadata and usage on a last chunk."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.ident: str | None = None
        self.served: str | None = None
        self.finish_reason: str | None = None
        self.usage: Usage | None = None

    def chunk(self, piece: Completion) -> GenerationChunk | None:
        self.ident, self.served = piece.id or self.ident, piece.model or self.served
        self.usage = piece.usage or self.usage
        self.finish_reason = piece.finish_reason or self.finish_reason
        return GenerationChunk(text=piece.text) if piece.text else None

    def last(self) -> GenerationChunk:
        return GenerationChunk(text="", generation_info={
            "finish_reason": self.finish_reason, "id": self.ident, "model_name": self.model,
            "served_model": self.served, "model_provider": DATABRICKS,
            "token_usage": usage_dict(self.usage)})


class DatabricksLLM(DatabricksSettings, BaseLLM):
    """Text completion with a Databricks serving endpoint (``prompt`` in, text out).

    Same credentials as ``ChatDatabricks``; ``endpoint``/``model``, ``temperature``,
    ``max_tokens``, ``stop``, ``n``, ``extra_params`` (merged into the body) and ``streaming``
    (real server-sent events, sync and async).
    """

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True,
                              extra="forbid", protected_namespaces=())

    model: str = Field(alias="endpoint")
    """Name of the serving endpoint; alias ``endpoint``."""
    temperature: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None
    n: int = Field(default=1, ge=1)
    extra_params: dict[str, Any] = Field(default_factory=dict)
    """Merged into every request body."""
    streaming: bool = False
    """Use the streaming API for ``invoke`` too."""

    @field_validator("extra_params", mode="before")
    @classmethod
    def _no_extra_params(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("extra_params")
    @classmethod
    def _check_extra_params(cls, value: dict[str, Any]) -> dict[str, Any]:
        reserved = [key for key in ("prompt", *RESERVED_BODY_KEYS[1:]) if key in value]
        if reserved:
            raise ValueError(f"extra_params cannot set {', '.join(reserved)}")
        return value

    @property
    def endpoint(self) -> str:
        return self.model

    @property
    def _llm_type(self) -> str:
        return "databricks"

    @classmethod
    def is_lc_serializable(cls) -> bool:
        return False

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.model, "temperature": self.temperature,
                "max_tokens": self.max_tokens, "stop": self.stop, "n": self.n,
                "extra_params": self.extra_params}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return langsmith_params(DATABRICKS, "llm", self.model,
                                stop if stop is not None else self.stop, kwargs,
                                temperature=self.temperature, max_tokens=self.max_tokens)

    def _params(self, stop: list[str] | None, kwargs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        endpoint, params = generation_params(self, stop, {k: v for k, v in kwargs.items()
                                                          if k != "prompt"})
        return endpoint, params

    @staticmethod
    def _result(per_prompt: list[list[Generation]], usages: list[Usage | None],
                model: str) -> LLMResult:
        usage: dict[str, int] | None = None
        for item in usages:
            usage = _add_usage(usage, item)
        return LLMResult(generations=per_prompt,
                         llm_output={"model_name": model, "token_usage": usage})

    @staticmethod
    def _streamed_result(generations: list[Generation], model: str) -> LLMResult:
        usage: dict[str, int] | None = None
        for generation in generations:
            part = (generation.generation_info or {}).get("token_usage")
            if part:
                usage = part if usage is None else {
                    key: usage.get(key, 0) + value for key, value in part.items()}
        return LLMResult(generations=[[g] for g in generations],
                         llm_output={"model_name": model, "token_usage": usage})

    @staticmethod
    def _merge(chunks: list[GenerationChunk]) -> Generation:
        merged = chunks[0]
        for chunk in chunks[1:]:
            merged += chunk
        return Generation(text=merged.text, generation_info=merged.generation_info)

    def _generate(self, prompts: list[str], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None,
                  **kwargs: Any) -> LLMResult:
        endpoint, params = self._params(stop, kwargs)
        if self.streaming and params.get("n", 1) == 1:
            merged = [self._merge(list(self._stream(prompt, stop, run_manager, **kwargs)))
                      for prompt in prompts]
            return self._streamed_result(merged, endpoint)
        completions = [self._databricks.complete(endpoint, p, **params) for p in prompts]
        return self._result([_completion_generations(c, endpoint) for c in completions],
                            [c.usage for c in completions], endpoint)

    async def _agenerate(self, prompts: list[str], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None,
                         **kwargs: Any) -> LLMResult:
        endpoint, params = self._params(stop, kwargs)
        if self.streaming and params.get("n", 1) == 1:
            merged = []
            for prompt in prompts:
                chunks = [c async for c in self._astream(prompt, stop, run_manager, **kwargs)]
                merged.append(self._merge(chunks))
            return self._streamed_result(merged, endpoint)
        completions = [await self._databricks.acomplete(endpoint, p, **params) for p in prompts]
        return self._result([_completion_generations(c, endpoint) for c in completions],
                            [c.usage for c in completions], endpoint)

    def _stream_setup(self, stop: list[str] | None,
                      kwargs: dict[str, Any]) -> tuple[str, dict[str, Any], _CompletionStream]:
        endpoint, params = self._params(stop, kwargs)
        if params.get("n", 1) != 1:
            from sfmodels_core.errors import InvalidInputError

            raise InvalidInputError("n > 1 cannot be streamed: a stream carries one answer")
        return endpoint, params, _CompletionStream(endpoint)

    def _stream(self, prompt: str, stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None,
                **kwargs: Any) -> Iterator[GenerationChunk]:
        endpoint, params, converter = self._stream_setup(stop, kwargs)
        pieces = self._databricks.stream_complete(endpoint, prompt, **params)
        with contextlib.closing(pieces) as it:  # type: ignore[type-var]
            for piece in it:
                if (chunk := converter.chunk(piece)) is not None:
                    if run_manager:
                        run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                    yield chunk
        yield converter.last()

    async def _astream(self, prompt: str, stop: list[str] | None = None,
                       run_manager: AsyncCallbackManagerForLLMRun | None = None,
                       **kwargs: Any) -> AsyncIterator[GenerationChunk]:
        endpoint, params, converter = self._stream_setup(stop, kwargs)
        pieces = self._databricks.astream_complete(endpoint, prompt, **params)
        async with contextlib.aclosing(pieces) as it:  # type: ignore[type-var]
            async for piece in it:
                if (chunk := converter.chunk(piece)) is not None:
                    if run_manager:
                        await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                    yield chunk
        yield converter.last()
