"""Input no service can take, refused with InvalidInputError before anything is sent: a NaN or an
infinity anywhere in a request body (JSON has no such numbers), and tool definitions or a
``tool_choice`` of the wrong shape, for Databricks chat, the Responses API and the Salesforce
prompted tool protocol. Settings (timeouts, backoffs) are in test_input_hygiene.py."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import httpx
import pytest

from sfmodels_core import DatabricksClient, SalesforceClient
from sfmodels_core._transport import dumps
from sfmodels_core.errors import InvalidInputError
from sfmodels_core.integration.salesforce import choose_protocol
from sfmodels_core.tool_protocol import tools_protocol

from .fakes import make_jwt

NAN, INF = float("nan"), float("inf")
USER = [{"role": "user", "content": "hi"}]
HOST = "https://adb.example.test"
TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather",
                                         "parameters": {"type": "object", "properties": {
                                             "city": {"type": "string"}}}}}
OK_CHAT = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "fine"},
                        "finish_reason": "stop"}]}
OK_RESPONSE = {"id": "resp_1", "status": "completed", "output": [
    {"type": "message", "role": "assistant", "content": [{"type": "output_text",
                                                          "text": "fine"}]}]}


def never_sent(request: httpx.Request) -> httpx.Response:  # pragma: no cover - must not run
    raise AssertionError(f"nothing may be sent, but {request.url} was")


async def never_sent_async(request: httpx.Request) -> httpx.Response:  # pragma: no cover
    raise AssertionError(f"nothing may be sent, but {request.url} was")


def refusing_databricks() -> DatabricksClient:
    return DatabricksClient(host=HOST, api_key="pat", env={},
                            transport=httpx.MockTransport(never_sent),
                            async_transport=httpx.MockTransport(never_sent_async))


class Sent:
    """A fake service that keeps the JSON bodies it is sent and answers ``answer``."""

    def __init__(self, answer: dict[str, Any]) -> None:
        self.bodies: list[Any] = []
        self.answer = answer

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(json.loads(request.read()))
        return httpx.Response(200, json=self.answer)

    def databricks(self) -> DatabricksClient:
        return DatabricksClient(host=HOST, api_key="pat", env={},
                                transport=httpx.MockTransport(self))


# -- NaN and infinities in request bodies ---------------------------------------------------------
@pytest.mark.parametrize("params, where, token", [
    ({"temperature": NAN}, "temperature", "NaN"),
    ({"top_p": INF}, "top_p", "Infinity"),
    ({"custom_inputs": {"weights": [0.5, -INF]}}, r"custom_inputs\.weights\[1\]", "-Infinity"),
    ({"tools": [{"type": "function", "function": {
        "name": "f", "parameters": {"type": "object", "properties": {
            "x": {"type": "number", "maximum": INF}}}}}]},
     # the path in the body as sent (the Responses API's tools are flat)
     r"tools\[0\](\.function)?\.parameters\.properties\.x\.maximum", "Infinity"),
], ids=["temperature", "top_p", "nested", "schema"])
@pytest.mark.parametrize("call", ["chat", "achat", "stream_chat", "respond", "arespond"])
async def test_a_non_finite_number_is_refused_naming_where_it_is(
        call: str, params: dict[str, Any], where: str, token: str) -> None:
    client = refusing_databricks()
    method = getattr(client, call)
    with pytest.raises(InvalidInputError, match=f"^The request's {where} is {token}: JSON has "
                                                "no such number"):
        if call.startswith("a"):
            await method("ep", USER, **params)
        elif call.startswith("stream"):
            list(method("ep", USER, **params))
        else:
            method("ep", USER, **params)


def test_embeddings_and_salesforce_bodies_are_checked_too() -> None:
    with pytest.raises(InvalidInputError, match="The request's scale is NaN"):
        refusing_databricks().embed("ep", ["a"], scale=NAN)
    salesforce = SalesforceClient(api_key=make_jwt(exp=time.time() + 3600), env={},
                                  transport=httpx.MockTransport(never_sent))
    with pytest.raises(InvalidInputError, match=r"The request's tags\.weight is Infinity"):
        salesforce.chat("sfdc_ai__DefaultGPT4Omni", USER, tags={"weight": INF})


def test_text_that_spells_nan_or_infinity_is_sent_as_it_is() -> None:
    sent = Sent(OK_CHAT)
    text = "NaN and Infinity are words here, " + "x" * 70_000  # a large body is walked
    sent.databricks().chat("ep", [{"role": "user", "content": text}], temperature=0.5,
                           custom_inputs={"note": "-Infinity"})
    assert sent.bodies[0]["messages"][0]["content"] == text
    assert sent.bodies[0]["custom_inputs"] == {"note": "-Infinity"}


@dataclasses.dataclass
class Weights:
    values: list[float]


@pytest.mark.parametrize("padding", [0, 70_000], ids=["searched", "walked"])
def test_dataclasses_are_looked_into_in_small_and_large_bodies(padding: int) -> None:
    with pytest.raises(InvalidInputError, match=r"The request's input\[1\]\.values\[0\] is NaN"):
        dumps({"input": ["x" * padding, Weights(values=[NAN])]})


def test_the_body_itself() -> None:
    with pytest.raises(InvalidInputError, match=r"The request's body is -Infinity"):
        dumps(-INF)


# -- tool definitions -----------------------------------------------------------------------------
BAD_TOOLS: list[tuple[Any, str]] = [
    ("x", "tools must be a list of tool definitions .* got str"),
    (TOOL, "tools must be a list of tool definitions .* got dict"),
    ([42], r"tools\[0\] must be a tool definition \(a dict\), got int"),
    ([{"type": 5, "function": {"name": "f"}}], r"tools\[0\]: type must be a non-empty string"),
    ([{"type": "function", "function": "f"}],
     r"tools\[0\]\.function must be an object with the function's name"),
    ([TOOL, {"type": "function", "function": {"description": "no name"}}],
     r"tools\[1\]\.function needs a name, a non-empty string; got None"),
    ([{"type": "function", "function": {"name": ""}}], r"tools\[0\]\.function needs a name"),
    ([{"type": "function", "function": {"name": 7}}], r"tools\[0\]\.function needs a name"),
    ([{"type": "function", "function": {"name": "f", "parameters": "nope"}}],
     r"tools\[0\]\.function\.parameters must be a JSON Schema object \(a dict\), got str"),
    ([{"type": "function", "function": {"name": "f", "parameters": [{"type": "object"}]}}],
     r"tools\[0\]\.function\.parameters must be a JSON Schema object"),
    ([{"type": "function", "name": "f", "parameters": "nope"}],
     r"tools\[0\]\.parameters must be a JSON Schema object"),
    ([{"type": "function", "function": {"name": "f", "description": 5}}],
     r"tools\[0\]\.function\.description must be a string"),
]


@pytest.mark.parametrize("tools, message", BAD_TOOLS, ids=[str(i) for i in range(len(BAD_TOOLS))])
@pytest.mark.parametrize("call", ["chat", "achat", "stream_chat", "respond", "arespond",
                                  "stream_respond"])
async def test_bad_tool_definitions_are_refused_before_sending(call: str, tools: Any,
                                                               message: str) -> None:
    method = getattr(refusing_databricks(), call)
    with pytest.raises(InvalidInputError, match=message):
        if call.startswith("a"):
            await method("ep", USER, tools=tools)
        elif call.startswith("stream"):
            list(method("ep", USER, tools=tools))
        else:
            method("ep", USER, tools=tools)


@pytest.mark.parametrize("tools, message", BAD_TOOLS, ids=[str(i) for i in range(len(BAD_TOOLS))])
def test_the_salesforce_tool_protocol_refuses_the_same(tools: Any, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        choose_protocol(tools=tools)


def test_the_salesforce_tool_protocol_takes_only_function_tools() -> None:
    with pytest.raises(InvalidInputError, match=r"tools\[1\] is a 'web_search' tool: only "
                                                "function tools"):
        tools_protocol([TOOL, {"type": "web_search"}])
    protocol = tools_protocol([TOOL, {"name": "bare", "parameters": {"type": "object"}}])
    assert '"name": "bare"' in protocol.instructions


def test_chat_sends_a_flat_function_nested_and_responses_the_other_way() -> None:
    flat = {"type": "function", "name": "get_weather", "description": "Weather",
            "parameters": TOOL["function"]["parameters"]}
    chat = Sent(OK_CHAT)
    chat.databricks().chat("ep", USER, tools=[flat], tool_choice={"type": "function",
                                                                   "name": "get_weather"})
    assert chat.bodies[0]["tools"] == [TOOL]
    assert chat.bodies[0]["tool_choice"] == {"type": "function",
                                             "function": {"name": "get_weather"}}
    responses = Sent(OK_RESPONSE)
    hosted = {"type": "web_search_preview", "search_context_size": "low"}
    responses.databricks().respond("ep", USER, tools=[TOOL, flat, hosted], tool_choice={
        "type": "function", "function": {"name": "get_weather"}})
    assert responses.bodies[0]["tools"] == [flat, flat, hosted]
    assert responses.bodies[0]["tool_choice"] == {"type": "function", "name": "get_weather"}


# -- tool_choice ----------------------------------------------------------------------------------
BAD_CHOICES: list[tuple[Any, Any, str]] = [
    ([TOOL], "any", "tool_choice must be 'auto', 'none', 'required' or an object naming"),
    ([TOOL], "get_weather", "tool_choice must be 'auto', 'none', 'required'"),
    ([TOOL], True, "tool_choice must be 'auto', 'none', 'required' or an object with a type"),
    ([TOOL], {"function": {"name": "get_weather"}}, "an object with a type"),
    ([TOOL], {"type": "function"}, "tool_choice names no function"),
    ([TOOL], {"type": "function", "function": {"name": "other"}},
     r"names the function 'other', which is not among the tools \(get_weather\)"),
    (None, {"type": "function", "function": {"name": "get_weather"}},
     r"which is not among the tools \(none given\)"),
    (None, "required", "tool_choice='required' was given without tools"),
]


@pytest.mark.parametrize("tools, choice, message", BAD_CHOICES,
                         ids=[str(i) for i in range(len(BAD_CHOICES))])
@pytest.mark.parametrize("call", ["chat", "achat", "respond", "arespond"])
async def test_a_tool_choice_of_the_wrong_shape_is_refused(call: str, tools: Any, choice: Any,
                                                           message: str) -> None:
    method = getattr(refusing_databricks(), call)
    with pytest.raises(InvalidInputError, match=message):
        if call.startswith("a"):
            await method("ep", USER, tools=tools, tool_choice=choice)
        else:
            method("ep", USER, tools=tools, tool_choice=choice)


@pytest.mark.parametrize("choice", ["auto", "none", "required",
                                    {"type": "function", "function": {"name": "get_weather"}}])
def test_good_tool_choices_are_sent(choice: Any) -> None:
    sent = Sent(OK_CHAT)
    sent.databricks().chat("ep", USER, tools=[TOOL], tool_choice=choice)
    assert sent.bodies[0]["tool_choice"] == choice and sent.bodies[0]["tools"] == [TOOL]
