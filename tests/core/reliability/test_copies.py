"""Copies and pickles of every framework class talk to the right service with the right client."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest

from sfmodels_core import DatabricksClient
from sfmodels_emulator import Emulator

LLAMA = "databricks-meta-llama-3-3-70b-instruct"


def classes() -> list[tuple[str, Any, Any]]:
    import llama_index_sfmodels as li
    from langchain_sfmodels import ChatDatabricks

    return [
        ("langchain", lambda **kw: ChatDatabricks(endpoint=LLAMA, **kw),
         lambda m: m.invoke("hi").content),
        ("llama_index", lambda **kw: li.DatabricksLLM(endpoint=LLAMA, **kw),
         lambda m: m.complete("hi").text),
    ]


@pytest.mark.parametrize("name, make, ask", classes(), ids=["langchain", "llama_index"])
def test_model_copy_with_new_settings_uses_them(emulator: Emulator, name: str, make: Any,
                                                ask: Any) -> None:
    with Emulator() as other:
        model = make(host=emulator.databricks_host, api_key=emulator.databricks_token)
        assert ask(model)  # the first client now exists
        moved = model.model_copy(update={"host": other.databricks_host,
                                         "api_key": other.databricks_token})
        assert ask(moved)
        assert other.counters()["requests"]["databricks.invocations"] == 1
        assert ask(model)  # the original keeps its own service
        assert emulator.counters()["requests"]["databricks.invocations"] == 2


@pytest.mark.parametrize("name, make, ask", classes(), ids=["langchain", "llama_index"])
def test_pickles_keep_settings_and_refuse_a_passed_client(emulator: Emulator, name: str,
                                                          make: Any, ask: Any) -> None:
    model = make(host=emulator.databricks_host, api_key=emulator.databricks_token)
    ask(model)
    again = pickle.loads(pickle.dumps(model))
    assert ask(again)
    client = DatabricksClient(host=emulator.databricks_host, api_key=emulator.databricks_token,
                              env={})
    shared = make(client=client)
    with pytest.raises(TypeError, match=r"client=.*cannot be pickled"):
        pickle.dumps(shared)
    assert ask(copy.deepcopy(shared))  # a deep copy shares the passed client
    client.close()


@pytest.mark.parametrize("name, make, ask", classes(), ids=["langchain", "llama_index"])
def test_settings_beside_a_passed_client_are_refused_not_ignored(
        emulator: Emulator, name: str, make: Any, ask: Any) -> None:
    client = DatabricksClient(host=emulator.databricks_host, api_key=emulator.databricks_token,
                              env={})
    with pytest.raises(ValueError, match="would be ignored"):
        make(client=client, timeout=5)
    with pytest.raises(ValueError, match="host"):
        make(client=client, host="https://elsewhere.example")
    assert ask(make(client=client))
    client.close()
