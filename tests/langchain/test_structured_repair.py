"""``with_structured_output`` on ChatSalesforce checks the reply with the user's own type, as
LlamaIndex's ``structured_predict`` does: what the type accepts is accepted, and what its
validators refuse goes back to the model once."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, field_validator
from typing_extensions import TypedDict

from langchain_sfmodels import ChatSalesforce
from sfmodels_core import SalesforceClient

pytestmark = pytest.mark.disable_socket


class Order(BaseModel):
    number: int
    status: str

    @field_validator("status")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in ("shipped", "pending"):
            raise ValueError("status must be shipped or pending")
        return value


class OrderDict(TypedDict):
    number: int
    status: str


class Script:
    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(json.loads(request.read()))
        n = len(self.bodies)
        return httpx.Response(200, json={"id": f"c{n}", "generationDetails": {"generations": [
            {"id": f"gen-{n}", "role": "assistant", "content": self.replies.pop(0),
             "parameters": {"finish_reason": "stop"}}]}})


def model(script: Script) -> ChatSalesforce:
    client = SalesforceClient(api_key="t", api_base="https://sf.example/v1", env={},
                              max_retries=0, transport=httpx.MockTransport(script))
    return ChatSalesforce(client=client)


@pytest.mark.parametrize("schema", [Order, OrderDict])
def test_what_the_type_accepts_needs_no_repair(schema: Any) -> None:
    script = Script('{"number": "1042", "status": "shipped"}')
    result = model(script).with_structured_output(schema).invoke("Order 1042?")
    number = result.number if isinstance(result, Order) else result["number"]
    assert number == 1042 and len(script.bodies) == 1


def test_what_a_validator_refuses_is_repaired_once() -> None:
    script = Script('{"number": 1042, "status": "lost"}', '{"number": 1042, "status": "pending"}')
    result = model(script).with_structured_output(Order).invoke("Order 1042?")
    assert result == Order(number=1042, status="pending")
    assert len(script.bodies) == 2
    assert "status must be shipped or pending" in script.bodies[1]["messages"][-1]["content"]
