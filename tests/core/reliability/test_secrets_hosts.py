"""Secrets and hosts against hostile input: tokens a header cannot carry, plain http, user info
in URLs, an api_instance_url from a hostile token endpoint, and names that would change a route.

Each refusal is a typed error that says what was wrong and never shows the secret."""

from __future__ import annotations

import asyncio
import pickle
import re
import ssl
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from sfmodels_core import DatabricksClient, SalesforceClient
from sfmodels_core._retry import error_from_exception
from sfmodels_core.auth import DatabricksSDKCredentials
from sfmodels_core.errors import (
    APIConnectionError,
    ConfigurationError,
    InvalidInputError,
    ResponseValidationError,
    SFModelsError,
    TokenError,
)
from tests.core.unit.fakes import Recorder, make_jwt, sf_chat_body, sf_token_body

SECRET = "dapiUniqueSecret4242"
MINTED = make_jwt(exp=time.time() + 3600, sub="minted-claim-7Qz")
DBX_CHAT = {"id": "c1", "model": "m", "choices": [{"index": 0, "text": "hi", "message": {
    "role": "assistant", "content": "hi"}, "finish_reason": "stop"}], "usage": {
    "prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
DBX_EMBED = {"object": "list", "model": "m", "data": [
    {"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}]}
SF_EMBED = {"embeddings": [{"embedding": [0.1, 0.2], "index": 0}],
            "parameters": {"model": "m", "usage": {"prompt_tokens": 1, "total_tokens": 1}}}
USER = [{"role": "user", "content": "hi"}]
SF_DOMAIN = "https://acme.my.salesforce.com"


def shown(error: BaseException) -> str:
    """Everything an error shows: its text, repr, fields, pickled copy and traceback."""
    return "\n".join([str(error), repr(error), repr(getattr(error, "__dict__", {})),
                      repr(pickle.loads(pickle.dumps(error)).__dict__)
                      if isinstance(error, SFModelsError) else "",
                      "".join(traceback.format_exception(error))])


def assert_hidden(error: BaseException, *secrets: str) -> None:
    text = shown(error)
    for secret in secrets:
        assert secret not in text, f"the secret shows in: {text[:300]!r}"


def service(token: str = MINTED, *, instance: str = "https://api.example.test",
            token_status: int = 200) -> Recorder:
    """A fake Salesforce and Databricks: token endpoints minting ``token``, and the APIs."""

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/services/oauth2/token":
            if token_status != 200:
                return httpx.Response(token_status, json={
                    "error": "invalid_client", "error_description": f"bad secret {SECRET}"})
            return httpx.Response(200, json=sf_token_body(token, api_instance_url=instance))
        if path == "/oidc/v1/token":
            if token_status != 200:
                return httpx.Response(token_status, json={
                    "error": "invalid_client", "error_description": f"bad secret {SECRET}"})
            return httpx.Response(200, json={"access_token": token, "token_type": "Bearer",
                                             "expires_in": 3600})
        if path.endswith("/embeddings"):
            return httpx.Response(200, json=SF_EMBED)
        if path.startswith("/serving-endpoints/"):
            return httpx.Response(200, json=DBX_EMBED if b'"input"' in request.content
                                  else DBX_CHAT)
        if path.endswith("/generations"):
            return httpx.Response(200, json={"id": "g", "generation": {
                "id": "gen-1", "generatedText": "Hello!"}})
        return httpx.Response(200, json=sf_chat_body())

    return Recorder(handler)


# -- 1. tokens, client ids and secrets a header cannot carry -------------------------------------
BAD_VALUES = [
    pytest.param(f"dapiA\nB{SECRET}", "a line feed (U+000A) at character 6", id="line-feed"),
    pytest.param(f"dapi\x00{SECRET}", "a NUL character (U+0000) at character 5", id="nul"),
    pytest.param(f"dapi{SECRET}\r", None, id="trailing-cr-is-stripped"),
    pytest.param(f"da pi{SECRET}", "a space (U+0020) at character 3", id="space"),
    pytest.param(f"dapi\x7f{SECRET}", "a DEL character (U+007F) at character 5", id="del"),
    pytest.param(f"dapi\u00e9{SECRET}", "a non-ASCII character at character 5", id="non-ascii"),
    pytest.param(f"dapi\u200b{SECRET}", "a non-ASCII character at character 5",
                 id="zero-width"),
]

CONSTRUCTIONS: dict[str, Callable[[str], Any]] = {
    "salesforce api_key": lambda v: SalesforceClient(api_key=v, env={}),
    "salesforce access_token": lambda v: SalesforceClient(access_token=v, env={}),
    "salesforce client_secret": lambda v: SalesforceClient(
        domain=SF_DOMAIN, client_id="id", client_secret=v, env={}),
    "salesforce client_id": lambda v: SalesforceClient(
        domain=SF_DOMAIN, client_id=v, client_secret="s", env={}),
    "SALESFORCE_ACCESS_TOKEN": lambda v: SalesforceClient(env={"SALESFORCE_ACCESS_TOKEN": v}),
    "SALESFORCE_CLIENT_SECRET": lambda v: SalesforceClient(env={
        "SALESFORCE_DOMAIN": SF_DOMAIN, "SALESFORCE_CLIENT_ID": "id",
        "SALESFORCE_CLIENT_SECRET": v}),
    "databricks api_key": lambda v: DatabricksClient(host="https://h.example", api_key=v,
                                                     env={}),
    "databricks token": lambda v: DatabricksClient(host="https://h.example", token=v, env={}),
    "databricks client_secret": lambda v: DatabricksClient(
        host="https://h.example", client_id="c", client_secret=v, env={}),
    "databricks client_id": lambda v: DatabricksClient(
        host="https://h.example", client_id=v, client_secret="s", env={}),
    "DATABRICKS_TOKEN": lambda v: DatabricksClient(env={"DATABRICKS_HOST": "https://h.example",
                                                        "DATABRICKS_TOKEN": v}),
    "DATABRICKS_CLIENT_SECRET": lambda v: DatabricksClient(env={
        "DATABRICKS_HOST": "https://h.example", "DATABRICKS_CLIENT_ID": "c",
        "DATABRICKS_CLIENT_SECRET": v}),
}


@pytest.mark.parametrize("value, where", BAD_VALUES)
@pytest.mark.parametrize("setting", list(CONSTRUCTIONS))
def test_unprintable_secrets_are_refused_at_construction(setting: str, value: str,
                                                         where: str | None) -> None:
    if where is None:  # white space around a value is only stripped
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            CONSTRUCTIONS[setting](value).close()
        return
    with pytest.raises(ConfigurationError) as info:
        CONSTRUCTIONS[setting](value)
    message = str(info.value)
    name = {"access_token": "api_key", "token": "api_key"}.get(setting.split()[-1],
                                                              setting.split()[-1])
    assert message.startswith(f"{name} holds {where}"), message
    assert "printable ASCII" in message and "not shown" in message
    assert info.value.__cause__ is None and info.value.__context__ is None
    assert_hidden(info.value, SECRET)


def test_a_profile_token_with_a_control_character_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "databrickscfg"
    config.write_text(f"[dev]\nhost = https://h.example\ntoken = dapi\x01{SECRET}\n")
    with pytest.raises(ConfigurationError, match="token of the config profile 'dev' holds a "
                                                 r"control character \(U\+0001\)") as info:
        DatabricksClient(profile="dev", config_file=str(config), env={})
    assert_hidden(info.value, SECRET)


# -- 1. minted tokens a header cannot carry ------------------------------------------------------
HOSTILE_TOKENS = [f"eyJhbGciOi.{SECRET}\n.sig", f"{SECRET}\x00", f"Bearer {SECRET}",
                  f"{SECRET}\u2028"]


def clients(rec: Recorder, **settings: Any) -> dict[str, Any]:
    return {
        "salesforce": SalesforceClient(domain=SF_DOMAIN, client_id="id", client_secret="s",
                                       env={}, max_retries=0, **rec.transports(), **settings),
        "databricks": DatabricksClient(host="https://h.example", client_id="c",
                                       client_secret="s", env={}, max_retries=0,
                                       **rec.transports(), **settings),
    }


def chat(client: Any, model: str = "m") -> Any:
    return client.chat(model, USER)


async def achat(client: Any, model: str = "m") -> Any:
    return await client.achat(model, USER)


@pytest.mark.parametrize("token", HOSTILE_TOKENS)
@pytest.mark.parametrize("provider", ["salesforce", "databricks"])
def test_a_minted_token_with_a_control_character_is_refused(provider: str, token: str) -> None:
    rec = service(token)
    client = clients(rec)[provider]
    with pytest.raises(TokenError, match=r"access token holding .* at character") as info:
        chat(client)
    assert_hidden(info.value, SECRET)
    assert client.auth.token is None  # not kept
    assert all(path.endswith("/token") for path in rec.paths()), rec.paths()  # nothing sent
    with pytest.raises(TokenError) as again:
        asyncio.run(achat(client))
    assert_hidden(again.value, SECRET)
    assert all(path.endswith("/token") for path in rec.paths()), rec.paths()


@pytest.mark.parametrize("provider", ["salesforce", "databricks"])
def test_a_token_endpoint_echoing_the_secret_does_not_show_it(provider: str) -> None:
    rec = service(token_status=401)
    client = (SalesforceClient(domain=SF_DOMAIN, client_id="id", client_secret=SECRET, env={},
                               max_retries=0, **rec.transports()) if provider == "salesforce"
              else DatabricksClient(host="https://h.example", client_id="c",
                                    client_secret=SECRET, env={}, max_retries=0,
                                    **rec.transports()))
    with pytest.raises(TokenError, match=r"bad secret \*\*\*") as info:
        chat(client)
    assert_hidden(info.value, SECRET)


@pytest.mark.parametrize("headers, problem", [
    ({"Authorization": f"Bearer {SECRET}\n"}, "a line feed"),
    ({"Authorization": f"Bearer {SECRET}\r\nX-Evil: 1"}, "a carriage return"),
    ({"Authorization": "Bearer ok", "X-Databricks-Azure-SP-Management-Token": f"{SECRET}\x00"},
     "a NUL character"),
    ({"Authorization": f"Bearer a b{SECRET}"}, "a space"),
])
def test_databricks_sdk_headers_with_control_characters_are_refused(
        headers: dict[str, str], problem: str) -> None:
    class Config:
        host = "https://adb-1.test"
        auth_type = "azure-cli"

        def authenticate(self) -> dict[str, str]:
            return headers

    rec = service()
    client = DatabricksClient(workspace_client=Config(), max_retries=0, **rec.transports())
    with pytest.raises(TokenError, match=f"header holding {problem}") as info:
        chat(client)
    assert_hidden(info.value, SECRET)
    assert rec.requests == []
    with pytest.raises(TokenError) as again:
        asyncio.run(achat(client))
    assert_hidden(again.value, SECRET)
    assert rec.requests == []


def test_databricks_sdk_headers_that_a_header_can_carry_are_used() -> None:
    class Config:
        host = "https://adb-1.test"
        auth_type = "azure-cli"

        def authenticate(self) -> dict[str, str]:
            return {"Authorization": "Bearer abc.def", "X-Databricks-Azure-Workspace-Resource-Id":
                    "/subscriptions/1/resourceGroups/g with space"}

    assert DatabricksSDKCredentials(Config()).mint().headers


# -- 2. exceptions whose text may quote header values -------------------------------------------
def raising(exc: Exception) -> dict[str, Any]:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        exc.request = request  # type: ignore[attr-defined]
        raise exc

    async def ahandler(request: httpx.Request) -> httpx.Response:
        return handler(request)

    return {"transport": httpx.MockTransport(handler),
            "async_transport": httpx.MockTransport(ahandler), "sent": sent}


def test_a_local_protocol_error_never_shows_the_header_it_quotes() -> None:
    exc = httpx.LocalProtocolError(f"Illegal header value b'Bearer {SECRET}\\n'")
    transports = raising(exc)
    sent = transports.pop("sent")
    client = DatabricksClient(host="https://h.example", api_key="t", env={}, max_retries=3,
                              **transports)
    with pytest.raises(APIConnectionError, match="LocalProtocolError") as info:
        chat(client)
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)
    assert len(sent) == 1  # not retried: it would fail the same way
    with pytest.raises(APIConnectionError) as again:
        asyncio.run(achat(client))
    assert SECRET not in str(again.value) and len(sent) == 2


def with_cause(exc: Exception, cause: BaseException) -> Exception:
    exc.__cause__ = cause
    return exc


@pytest.mark.parametrize("exc, kind, words", [
    (with_cause(httpx.ConnectError(f"refused {SECRET}"),
                ConnectionRefusedError(111, "Connection refused")),
     APIConnectionError, "ConnectError: [Errno 111] Connection refused"),
    (with_cause(httpx.ConnectError(f"All connection attempts failed {SECRET}"), with_cause(
        OSError("All connection attempts failed"),
        ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 1)"))),
     APIConnectionError, "ConnectError: [Errno 111] Connection refused"),
    (with_cause(httpx.ConnectError(f"cert {SECRET}"), ssl.SSLError(1, f"x {SECRET}")),
     APIConnectionError, "ConnectError: TLS error"),
    (httpx.ReadError(f"reset {SECRET}"), APIConnectionError, "ReadError"),
    (httpx.RemoteProtocolError(f"illegal status line: bytearray(b'{SECRET}')"),
     APIConnectionError, "RemoteProtocolError"),
    (httpx.RemoteProtocolError("Server disconnected without sending a response."),
     APIConnectionError, "RemoteProtocolError: Server disconnected without sending a response."),
    (httpx.LocalProtocolError(f"Illegal header value b'Bearer {SECRET}'"), APIConnectionError,
     "LocalProtocolError"),
    (httpx.DecodingError(f"Error -3 {SECRET}"), ResponseValidationError, "DecodingError"),
    (httpx.UnsupportedProtocol(f"Request URL has an unsupported protocol {SECRET}"),
     ConfigurationError, "UnsupportedProtocol"),
    (httpx.InvalidURL(f"Invalid non-printable ASCII character in URL {SECRET}"),
     ConfigurationError, "InvalidURL"),
    (httpx.TooManyRedirects(f"Exceeded {SECRET}"), APIConnectionError, "TooManyRedirects"),
    (httpx.ProxyError(f"407 {SECRET}"), APIConnectionError, "ProxyError"),
    (httpx.ReadTimeout(f"timed out {SECRET}"), APIConnectionError, "ReadTimeout"),
])
def test_errors_name_the_exception_class_and_never_copy_its_text(
        exc: Exception, kind: type[SFModelsError], words: str) -> None:
    error = error_from_exception(exc, "Databricks")
    assert isinstance(error, kind)
    assert words in error.message
    assert SECRET not in str(error) and SECRET not in repr(error)


def test_aiohttp_errors_never_carry_aiohttp_text() -> None:
    aiohttp = pytest.importorskip("aiohttp")
    from sfmodels_core._aiohttp import transport_error

    request = httpx.Request("POST", "https://h.example/x")
    info = aiohttp.RequestInfo(request.url, "POST", {}, request.url)  # type: ignore[arg-type]
    for exc in (aiohttp.ClientResponseError(info, (), status=400, message=f"bad {SECRET}"),
                aiohttp.ClientPayloadError(f"payload {SECRET}"),
                aiohttp.ClientOSError(104, f"reset {SECRET}"),
                aiohttp.ServerDisconnectedError(f"gone {SECRET}")):
        mapped = transport_error(exc, request)
        assert SECRET not in str(mapped)
        assert SECRET not in str(error_from_exception(mapped, "Databricks"))


# -- 3. plain http, loopback, user info ----------------------------------------------------------
HTTP_SETTINGS: dict[str, Callable[..., Any]] = {
    "api_base": lambda url, **kw: SalesforceClient(api_key="t", api_base=url + "/v1", env={},
                                                   **kw),
    "SALESFORCE_API_BASE": lambda url, **kw: SalesforceClient(
        api_key="t", env={"SALESFORCE_API_BASE": url + "/v1"}, **kw),
    "domain": lambda url, **kw: SalesforceClient(domain=url, client_id="id",
                                                 client_secret="s", env={}, **kw),
    "host": lambda url, **kw: DatabricksClient(host=url, api_key="t", env={}, **kw),
    "DATABRICKS_HOST": lambda url, **kw: DatabricksClient(
        env={"DATABRICKS_HOST": url, "DATABRICKS_CLIENT_ID": "c",
             "DATABRICKS_CLIENT_SECRET": "s"}, **kw),
}


@pytest.mark.parametrize("setting", list(HTTP_SETTINGS))
def test_plain_http_to_another_host_is_refused_unless_allowed(setting: str) -> None:
    host = f"{setting.lower().replace('_', '-')}.insecure.example"
    with pytest.raises(ConfigurationError, match=f"plain http:// to {host}") as info:
        HTTP_SETTINGS[setting](f"http://{host}")
    assert "allow_insecure_http=True" in str(info.value)
    with pytest.warns(UserWarning, match=f"sent to {host} over plain http"):
        client = HTTP_SETTINGS[setting](f"http://{host}", allow_insecure_http=True)
    client.close()
    with warnings.catch_warnings():  # once per host
        warnings.simplefilter("error")
        HTTP_SETTINGS[setting](f"http://{host}", allow_insecure_http=True).close()
        HTTP_SETTINGS[setting](f"https://{host}", allow_insecure_http=True).close()


@pytest.mark.parametrize("url", ["http://127.0.0.1:9", "http://127.1.2.3:9", "http://localhost:9",
                                 "http://LOCALHOST", "http://[::1]:9"])
@pytest.mark.parametrize("setting", list(HTTP_SETTINGS))
def test_plain_http_to_loopback_is_allowed_without_a_word(setting: str, url: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        HTTP_SETTINGS[setting](url).close()


def test_the_flag_must_be_a_bool() -> None:
    with pytest.raises(ConfigurationError, match="allow_insecure_http must be True or False"):
        DatabricksClient(host="https://h.example", api_key="t", env={},
                         allow_insecure_http="yes")  # type: ignore[arg-type]


@pytest.mark.parametrize("url", ["127.0.0.1@evil.example", "http://127.0.0.1@evil.example",
                                 "https://user:pw-" + SECRET + "@h.example",
                                 "https://h.example@evil.example/path", "user@h.example",
                                 "https://@h.example"])
@pytest.mark.parametrize("setting", list(HTTP_SETTINGS))
def test_user_info_in_a_url_is_refused(setting: str, url: str) -> None:
    build = HTTP_SETTINGS[setting]
    if setting in ("api_base", "SALESFORCE_API_BASE"):  # the helper adds a path
        url = url.split("/path")[0]
    for insecure in (False, True):
        with pytest.raises(ConfigurationError, match="user-info part") as info:
            build(url, allow_insecure_http=insecure)
        assert_hidden(info.value, SECRET, "evil.example")


def test_user_info_in_a_profile_host_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "databrickscfg"
    config.write_text("[dev]\nhost = https://127.0.0.1@evil.example\ntoken = t\n")
    with pytest.raises(ConfigurationError, match="user-info part"):
        DatabricksClient(profile="dev", config_file=str(config), env={})


def test_user_info_in_the_databricks_sdk_host_is_refused() -> None:
    class Config:
        host = "https://127.0.0.1@evil.example"
        auth_type = "pat"

        def authenticate(self) -> dict[str, str]:
            return {"Authorization": "Bearer t"}

    with pytest.raises(ConfigurationError, match="user-info part"):
        DatabricksClient(workspace_client=Config())


def test_plain_http_from_the_databricks_sdk_is_refused_unless_allowed() -> None:
    class Config:
        host = "http://sdk.insecure.example"
        auth_type = "pat"

        def authenticate(self) -> dict[str, str]:
            return {"Authorization": "Bearer t"}

    with pytest.raises(ConfigurationError, match="plain http://"):
        DatabricksClient(workspace_client=Config())
    with pytest.warns(UserWarning, match="sdk.insecure.example"):
        DatabricksClient(workspace_client=Config(), allow_insecure_http=True).close()


# -- 3. Salesforce's api_instance_url ------------------------------------------------------------
@pytest.mark.parametrize("instance, problem", [
    ("http://api.evil.example", "plain http:// to api.evil.example"),
    ("https://127.0.0.1@api.evil.example", "user-info part"),
    ("https://user:pw@api.example.test", "user-info part"),
    ("ftp://api.example.test", "not an http(s) URL"),
    ("api.example.test", "not an http(s) URL"),
    ("https://api.example.test/?x=1", "a query or a fragment"),
    ("https://api.example.test/\x00", "not an http(s) URL"),
])
def test_a_hostile_api_instance_url_is_refused(instance: str, problem: str) -> None:
    rec = service(instance=instance)
    client = clients(rec)["salesforce"]
    with pytest.raises(TokenError, match="api_instance_url that (is |has )?(a )?" + re.escape(
            problem)) as info:
        chat(client)
    assert_hidden(info.value, MINTED, "pw")
    assert rec.paths() == ["/services/oauth2/token"]  # no API call went anywhere
    assert client.auth.token is None
    with pytest.raises(TokenError):
        asyncio.run(achat(client))
    assert rec.paths() == ["/services/oauth2/token"] * 2


def test_an_api_instance_url_on_loopback_or_allowed_http_is_used() -> None:
    rec = service(instance="http://127.0.0.1:9")
    chat(clients(rec)["salesforce"])
    assert str(rec.requests[-1].url).startswith("http://127.0.0.1:9/einstein/platform/v1/")
    rec = service(instance="http://api.allowed.example")
    with pytest.warns(UserWarning, match="api.allowed.example"):
        chat(clients(rec, allow_insecure_http=True)["salesforce"])
    assert str(rec.requests[-1].url).startswith("http://api.allowed.example/einstein/")


# -- 4. model and endpoint names -----------------------------------------------------------------
BAD_NAMES = ["", "  ", ".", "..", " .. ", "a/b", "../x", "a b", "m\x00", "m\nx", "m\tx",
             "m\u200bx", "m\u2028x", "\x7f"]


def calls(provider: str, name: str) -> list[Callable[[Any], Any]]:
    if provider == "salesforce":
        return [lambda c: c.chat(name, USER), lambda c: c.generate(name, "hi"),
                lambda c: c.embed(name, ["a"]),
                lambda c: asyncio.run(c.achat(name, USER)),
                lambda c: asyncio.run(c.aembed(name, ["a"]))]
    return [lambda c: c.chat(name, USER), lambda c: c.complete(name, "hi"),
            lambda c: c.embed(name, ["a"]), lambda c: list(c.stream_chat(name, USER)),
            lambda c: asyncio.run(c.achat(name, USER)),
            lambda c: asyncio.run(c.aembed(name, ["a"]))]


@pytest.mark.parametrize("name", BAD_NAMES)
@pytest.mark.parametrize("provider", ["salesforce", "databricks"])
def test_bad_names_are_refused_before_anything_is_sent(provider: str, name: str) -> None:
    rec = service()
    client = clients(rec)[provider]
    for call in calls(provider, name):
        with pytest.raises(InvalidInputError, match=r"model|endpoint"):
            call(client)
    assert rec.requests == []


ENCODED = [("m?x=1", "m%3Fx%3D1"), ("m#frag", "m%23frag"), ("a%b", "a%25b"),
           ("a%2Fb", "a%252Fb"), ("mod\u00e8le", "mod%C3%A8le"), ("a;b", "a%3Bb"),
           ("...", "..."), ("m.v1_2-x~y", "m.v1_2-x~y"), (" m ", "m")]


@pytest.mark.parametrize("name, segment", ENCODED)
@pytest.mark.parametrize("provider", ["salesforce", "databricks"])
def test_other_names_reach_the_server_as_one_path_segment(provider: str, name: str,
                                                          segment: str) -> None:
    rec = service()
    client = clients(rec)[provider]
    for call in calls(provider, name):
        call(client)
    api = [r for r in rec.requests if not r.url.path.endswith("/token")]
    assert api
    for request in api:
        raw = request.url.raw_path.decode("ascii")
        assert not request.url.query and not request.url.fragment
        if provider == "salesforce":
            assert raw.split("/")[-2] == segment and raw.startswith("/einstein/platform/v1/")
        else:
            assert raw == f"/serving-endpoints/{segment}/invocations"


def test_an_encoded_name_reaches_the_emulator_as_one_segment() -> None:
    from sfmodels_core.errors import NotFoundError
    from sfmodels_emulator import Emulator

    with Emulator() as emu:
        client = DatabricksClient(host=emu.databricks_host, api_key=emu.databricks_token,
                                  env={}, max_retries=0)
        with pytest.raises(NotFoundError):
            client.chat("databricks-meta-llama-3-3-70b-instruct?x=1", USER)
        assert emu.counters()["requests"].get("databricks.invocations", 0) <= 1


# -- Spark takes the flag as a setting and carries it to its executors --------------------------
def test_spark_settings_refuse_plain_http_unless_allowed() -> None:
    pytest.importorskip("pyspark")
    from sfmodels_core.integration.batch.connection import make_client, resolve
    from sfmodels_core.options import ClientOptions

    with pytest.raises(ConfigurationError, match="plain http://"):
        resolve("databricks", {"host": "http://spark.insecure.example", "api_key": "t"}, env={})
    with pytest.warns(UserWarning, match="spark.insecure.example"):
        connection = resolve("databricks", {"host": "http://spark.insecure.example",
                                            "api_key": "t", "allow_insecure_http": True},
                             env={})
    assert connection.allow_insecure_http and "allow_insecure_http=True" in repr(connection)
    assert pickle.loads(pickle.dumps(connection)) == connection
    make_client(connection, ClientOptions()).close()
    with pytest.raises(ConfigurationError, match="user-info part"):
        resolve("salesforce", {"domain": "127.0.0.1@evil.example", "client_id": "i",
                               "client_secret": "s"}, env={})
