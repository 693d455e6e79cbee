"""Fixtures for the LlamaIndex classes: instances pointed at the emulator, a clean environment,
and instrumentation handlers that are removed again after each test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index_instrumentation import get_dispatcher
from pydantic import Field

from llama_index_sfmodels import (
    DatabricksEmbedding,
    DatabricksLLM,
    SalesforceEmbedding,
    SalesforceFeedbackHandler,
    SalesforceLLM,
)

if TYPE_CHECKING:
    from llama_index.core.instrumentation.events import BaseEvent

    from sfmodels_emulator import Emulator

CHAT_ENDPOINT = "databricks-meta-llama-3-3-70b-instruct"
EMBEDDING_ENDPOINT = "databricks-gte-large-en"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """No settings leak in from the machine running the tests."""
    for name in ("SALESFORCE_DOMAIN", "SALESFORCE_CLIENT_ID", "SALESFORCE_CLIENT_SECRET",
                 "SALESFORCE_ACCESS_TOKEN", "SALESFORCE_API_BASE", "DATABRICKS_HOST",
                 "DATABRICKS_TOKEN", "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET",
                 "DATABRICKS_CONFIG_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "no-databrickscfg"))


def salesforce_settings(emulator: Emulator) -> dict[str, Any]:
    return {"domain": emulator.salesforce_domain, "client_id": emulator.salesforce_client_id,
            "client_secret": emulator.salesforce_client_secret, "max_retries": 0,
            "timeout": 10.0}


def databricks_settings(emulator: Emulator) -> dict[str, Any]:
    return {"host": emulator.databricks_host, "api_key": emulator.databricks_token,
            "max_retries": 0, "timeout": 10.0}


@pytest.fixture
def sf_llm(emulator: Emulator) -> Iterator[SalesforceLLM]:
    llm = SalesforceLLM(**salesforce_settings(emulator))
    yield llm
    llm.close()


@pytest.fixture
def sf_embedding(emulator: Emulator) -> Iterator[SalesforceEmbedding]:
    embedding = SalesforceEmbedding(**salesforce_settings(emulator))
    yield embedding
    embedding.close()


@pytest.fixture
def db_llm(emulator: Emulator) -> Iterator[DatabricksLLM]:
    llm = DatabricksLLM(endpoint=CHAT_ENDPOINT, **databricks_settings(emulator))
    yield llm
    llm.close()


@pytest.fixture
def db_embedding(emulator: Emulator) -> Iterator[DatabricksEmbedding]:
    embedding = DatabricksEmbedding(endpoint=EMBEDDING_ENDPOINT, **databricks_settings(emulator))
    yield embedding
    embedding.close()


@pytest.fixture
async def asf_llm(emulator: Emulator) -> AsyncIterator[SalesforceLLM]:
    """For async tests: the async HTTP client is closed inside the test's event loop."""
    llm = SalesforceLLM(**salesforce_settings(emulator))
    yield llm
    await llm.aclose()


@pytest.fixture
async def adb_llm(emulator: Emulator) -> AsyncIterator[DatabricksLLM]:
    llm = DatabricksLLM(endpoint=CHAT_ENDPOINT, **databricks_settings(emulator))
    yield llm
    await llm.aclose()


@pytest.fixture
def feedback_handler(sf_llm: SalesforceLLM) -> Iterator[SalesforceFeedbackHandler]:
    handler = SalesforceFeedbackHandler(client=sf_llm.client).register()
    yield handler
    handler.unregister()


class EventLog(BaseEventHandler):
    """Collects every instrumentation event."""

    events: list[Any] = Field(default_factory=list)

    @classmethod
    def class_name(cls) -> str:
        return "EventLog"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        self.events.append(event)

    def names(self) -> list[str]:
        return [type(e).__name__ for e in self.events]


@pytest.fixture
def events() -> Iterator[EventLog]:
    log = EventLog()
    dispatcher = get_dispatcher()
    dispatcher.add_event_handler(log)
    yield log
    dispatcher.event_handlers = [h for h in dispatcher.event_handlers if h is not log]
