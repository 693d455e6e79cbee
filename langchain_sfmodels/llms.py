"""Text-completion models: ``SalesforceLLM`` (generations) and ``DatabricksLLM`` (completions)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseLLM
from langchain_core.outputs import Generation, GenerationChunk, LLMResult
from pydantic import ConfigDict

from sfmodels_core.types import Usage

from ._common import usage_dict
from ._databricks import (
    CompletionStream,
    DatabricksFields,
    completion_generations,
    generation_params,
    single_answer,
)
from ._salesforce import SalesforceFields, call_settings, generation

if TYPE_CHECKING:
    pass

__all__ = [
    "DatabricksLLM",
    "SalesforceLLM",
]


def _result(generations: list[list[Generation]], usages: list[Usage | None],
            model: str) -> LLMResult:
    return LLMResult(generations=generations,
                     llm_output={"model_name": model, "token_usage": usage_dict(
                         Usage.total(usages))})


class SalesforceLLM(SalesforceFields, BaseLLM):
    """Text generation with the Salesforce Models API ``generations`` endpoint.

    Same settings as ``ChatSalesforce``. Each generation's ``generation_info`` holds the
    Salesforce ``generation_id`` (what feedback refers to), ``id``, ``model_name``,
    ``served_model``, ``finish_reason`` and ``content_quality``. ``stop`` is enforced on the
    client; ``temperature``/``max_tokens`` are accepted, not sent, and warned about once.
    """

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True,
                              extra="forbid", protected_namespaces=())

    _LS_MODEL_TYPE: ClassVar[Literal["chat", "llm"]] = "llm"

    @property
    def _llm_type(self) -> str:
        return "salesforce"

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
class DatabricksLLM(DatabricksFields, BaseLLM):
    """Text completion with a Databricks serving endpoint (``prompt`` in, text out).

    Same credentials as ``ChatDatabricks``; ``endpoint``/``model``, ``temperature``,
    ``max_tokens``, ``stop``, ``n``, ``extra_params`` (merged into the body) and ``streaming``
    (real server-sent events, sync and async).
    """

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True,
                              extra="forbid", protected_namespaces=())

    _LS_MODEL_TYPE: ClassVar[Literal["chat", "llm"]] = "llm"

    @property
    def _llm_type(self) -> str:
        return "databricks"

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
