"""Text-completion models: ``SalesforceLLM`` (generations) and ``DatabricksLLM`` (completions)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseLLM, LangSmithParams
from langchain_core.outputs import Generation, GenerationChunk, LLMResult
from pydantic import ConfigDict, Field, field_validator

from sfmodels_core.adapters.settings import DatabricksSettings, SalesforceSettings
from sfmodels_core.defaults import SALESFORCE_CHAT_MODEL
from sfmodels_core.types import Usage

from ._common import DATABRICKS, SALESFORCE, langsmith_params, usage_dict
from ._databricks import (
    CompletionStream,
    check_extra_params,
    completion_generations,
    generation_params,
    single_answer,
)
from ._salesforce import call_settings, generation

if TYPE_CHECKING:
    pass


def _result(generations: list[list[Generation]], usages: list[Usage | None],
            model: str) -> LLMResult:
    return LLMResult(generations=generations,
                     llm_output={"model_name": model, "token_usage": usage_dict(
                         Usage.total(usages))})


class SalesforceLLM(SalesforceSettings, BaseLLM):
    """Text generation with the Salesforce Models API ``generations`` endpoint.

    Same settings as ``ChatSalesforce``. Each generation's ``generation_info`` holds the
    Salesforce ``generation_id`` (what feedback refers to), ``id``, ``model_name``,
    ``served_model``, ``finish_reason`` and ``content_quality``. ``stop`` is enforced on the
    client; ``temperature``/``max_tokens`` are accepted, not sent, and warned about once.
    """

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True,
                              extra="forbid", protected_namespaces=())

    model: str = SALESFORCE_CHAT_MODEL
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

    def _generate(self, prompts: list[str], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None,
                  **kwargs: Any) -> LLMResult:
        model, options, stop = call_settings(self, stop, kwargs)
        results = [self.client.generate(model, prompt, **options) for prompt in prompts]
        return _result([[generation(r, model, stop)] for r in results],
                       [r.usage for r in results], model)

    async def _agenerate(self, prompts: list[str], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None,
                         **kwargs: Any) -> LLMResult:
        model, options, stop = call_settings(self, stop, kwargs)
        results = [await self.client.agenerate(model, prompt, **options) for prompt in prompts]
        return _result([[generation(r, model, stop)] for r in results],
                       [r.usage for r in results], model)


# -- Databricks -----------------------------------------------------------------------------------
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
    def _check_extra_params(cls, value: Any) -> Any:
        return check_extra_params(value)

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
    def _streamed_result(generations: list[Generation], model: str) -> LLMResult:
        usages = [Usage.from_wire((g.generation_info or {}).get("token_usage"))
                  for g in generations]
        return _result([[g] for g in generations], usages, model)

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
        completions = [self.client.complete(endpoint, p, **params) for p in prompts]
        return _result([completion_generations(c, endpoint) for c in completions],
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
        completions = [await self.client.acomplete(endpoint, p, **params) for p in prompts]
        return _result([completion_generations(c, endpoint) for c in completions],
                       [c.usage for c in completions], endpoint)

    def _stream_setup(self, stop: list[str] | None,
                      kwargs: dict[str, Any]) -> tuple[str, dict[str, Any], CompletionStream]:
        endpoint, params = self._params(stop, kwargs)
        single_answer(params)
        return endpoint, params, CompletionStream(endpoint)

    def _stream(self, prompt: str, stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None,
                **kwargs: Any) -> Iterator[GenerationChunk]:
        endpoint, params, converter = self._stream_setup(stop, kwargs)
        pieces = self.client.stream_complete(endpoint, prompt, **params)
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
        pieces = self.client.astream_complete(endpoint, prompt, **params)
        async with contextlib.aclosing(pieces) as it:  # type: ignore[type-var]
            async for piece in it:
                if (chunk := converter.chunk(piece)) is not None:
                    if run_manager:
                        await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                    yield chunk
        yield converter.last()
