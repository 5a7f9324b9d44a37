"""Action-server calls reuse their connections, and a stale one loses no call (actionpool).

The servers here are raw asyncio HTTP/1.1 servers, so each test decides
exactly when a connection closes and counts connections and requests.
"""

import asyncio
import json
import re
from pathlib import Path
from typing import AsyncIterator, Callable, List

import aiohttp
from hypothesis import given, settings, strategies as st
import pytest
from rasa.utils.endpoints import ClientResponseError, EndpointConfig, read_endpoint_config
from sanic.config import DEFAULT_CONFIG

from walletbot.rasa_compat import actionpool

ROOT = Path(__file__).resolve().parents[3]


class Server:
    """Answers ``POST /webhook`` with the request's JSON body echoed back.

    ``drop`` decides, per (connection number, request number on it), whether to
    close the connection instead of answering, after reading the request.
    """

    def __init__(self, drop: Callable[[int, int], bool] = lambda conn, req: False,
                 status: int = 200) -> None:
        self.drop = drop
        self.status = status
        self.connections = 0
        self.requests: List[dict] = []
        self.server: asyncio.AbstractServer

    @property
    def url(self) -> str:
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/webhook"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        conn, served = self.connections, 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
                body = json.loads(await reader.readexactly(length))
                served += 1
                self.requests.append({"connection": conn, **body})
                if self.drop(conn, served):
                    break
                out = json.dumps(body).encode()
                writer.write(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (self.status, len(out), out))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client closed the connection: this connection's requests are over
        finally:
            writer.close()

    async def __aenter__(self) -> "Server":
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.close()
        await self.server.wait_closed()


@pytest.fixture
async def installed() -> AsyncIterator[None]:
    actionpool.install()
    yield
    await actionpool.close_sessions()


def pooled(url: str, seconds: float = 2) -> EndpointConfig:
    return EndpointConfig(url, keep_alive_seconds=seconds)


async def test_calls_share_one_connection(installed):
    async with Server() as server:
        endpoint = pooled(server.url)
        replies = [await endpoint.request(json={"n": n}) for n in range(5)]
    assert replies == [{"n": n} for n in range(5)]
    assert server.connections == 1


async def test_an_endpoint_without_keep_alive_connects_per_call_as_rasa_does(installed):
    async with Server() as server:
        endpoint = EndpointConfig(server.url)
        for n in range(3):
            assert await endpoint.request(json={"n": n}) == {"n": n}
    assert server.connections == 3


async def test_concurrent_calls_are_all_answered(installed):
    async with Server() as server:
        endpoint = pooled(server.url)
        replies = await asyncio.gather(*(endpoint.request(json={"n": n}) for n in range(20)))
    assert replies == [{"n": n} for n in range(20)]
    assert server.connections <= actionpool.POOL_LIMIT


async def test_a_connection_the_server_dropped_is_retried_once_on_a_new_one(installed):
    # The second request on connection 1 finds it closed by the server: the
    # race keep-alive has with a server closing an idle connection.
    async with Server(drop=lambda conn, req: conn == 1 and req == 2) as server:
        endpoint = pooled(server.url)
        assert await endpoint.request(json={"n": 1}) == {"n": 1}
        assert await endpoint.request(json={"n": 2}) == {"n": 2}
    assert [(r["connection"], r["n"]) for r in server.requests] == [(1, 1), (1, 2), (2, 2)]


async def test_a_new_connection_dropped_is_not_sent_twice(installed):
    # Nothing says the server did not act on it: a POST is not repeated.
    async with Server(drop=lambda conn, req: True) as server:
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await pooled(server.url).request(json={"n": 1})
    assert len(server.requests) == 1


async def test_a_reused_connection_is_retried_only_once(installed):
    async with Server(drop=lambda conn, req: not (conn == 1 and req == 1)) as server:
        endpoint = pooled(server.url)
        await endpoint.request(json={"n": 1})
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await endpoint.request(json={"n": 2})
    assert [r["n"] for r in server.requests] == [1, 2, 2]


async def test_an_error_status_raises_rasas_error(installed):
    async with Server(status=500) as server:
        with pytest.raises(ClientResponseError) as error:
            await pooled(server.url).request(json={"n": 1})
    assert error.value.status == 500


async def test_an_idle_connection_is_dropped_by_the_client_after_its_keep_alive(installed):
    async with Server() as server:
        endpoint = pooled(server.url, seconds=0.2)
        await endpoint.request(json={"n": 1})
        await asyncio.sleep(0.6)
        await endpoint.request(json={"n": 2})
    assert server.connections == 2


async def test_closing_the_sessions_closes_the_connections(installed):
    async with Server() as server:
        endpoint = pooled(server.url)
        await endpoint.request(json={"n": 1})
        await actionpool.close_sessions()
        await endpoint.request(json={"n": 2})
    assert server.connections == 2


@pytest.mark.parametrize("value", ["soon", -1])
def test_a_bad_keep_alive_setting_is_refused_clearly(value):
    with pytest.raises(ValueError, match="keep_alive_seconds"):
        actionpool.keep_alive_seconds(pooled("http://127.0.0.1:1/webhook", value))


@pytest.mark.parametrize("endpoints", [ROOT / "endpoints.yml",
                                       ROOT / "config" / "prod" / "endpoints.yml"],
                         ids=["dev", "prod"])
def test_both_profiles_keep_connections_for_less_than_the_action_servers_timeout(
        endpoints, monkeypatch):
    for name in re.findall(r"\$\{(\w+)\}", endpoints.read_text(encoding="utf-8")):
        monkeypatch.setenv(name, "0")
    monkeypatch.setenv("ACTION_ENDPOINT_URL", "http://127.0.0.1:1/webhook")
    seconds = actionpool.keep_alive_seconds(read_endpoint_config(str(endpoints),
                                                                 "action_endpoint"))
    # The action server is rasa-sdk's Sanic app, on Sanic's default idle timeout.
    assert 0 < seconds < DEFAULT_CONFIG["KEEP_ALIVE_TIMEOUT"]


# Request bodies: ujson, with json.dumps deciding whatever ujson refuses.
# Keys: those json.dumps accepts, but non-finite floats (see the last test of these).
json_keys = st.one_of(st.text(), st.integers(-2**70, 2**70), st.booleans(), st.none(),
                      st.floats(allow_nan=False, allow_infinity=False))
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**80, 2**80), st.floats(), st.text()),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.tuples(inner, inner),
                            st.dictionaries(json_keys, inner, max_size=4)),
    max_leaves=25)


def outcome(dumps: Callable, value: object) -> object:
    try:
        text = dumps(value)
    except Exception as error:  # noqa: BLE001 - the error is the outcome compared
        return type(error).__name__
    # Decoded and encoded again: one spelling for equal values (NaN included).
    return json.dumps(json.loads(text), sort_keys=True)


@settings(max_examples=400, deadline=None)
@given(value=json_values)
def test_a_body_decodes_to_what_the_standard_library_would_have_sent(value):
    assert outcome(actionpool.dumps, value) == outcome(json.dumps, value)


def test_what_ujson_refuses_gets_the_standard_librarys_answer():
    import ujson

    with pytest.raises(TypeError, match="reject_bytes"):
        ujson.dumps({"n": b"x"})
    with pytest.raises(TypeError, match="Object of type bytes is not JSON serializable"):
        actionpool.dumps({"n": b"x"})
    with pytest.raises(TypeError, match="Object of type object is not JSON serializable"):
        actionpool.dumps({"n": object()})


def test_the_documented_difference_is_keys_no_json_object_has():
    # Only dict keys that are not strings: never in a body Rasa built from JSON events.
    assert json.loads(actionpool.dumps({float("inf"): 1})) == {"inf": 1}
    assert json.loads(json.dumps({float("inf"): 1})) == {"Infinity": 1}
    assert json.loads(actionpool.dumps({(1, 2): 1})) == {"(1, 2)": 1}
    with pytest.raises(TypeError):
        json.dumps({(1, 2): 1})


async def test_pooled_bodies_go_out_as_ujson_and_arrive_whole(installed):
    async with Server() as server:
        endpoint = pooled(server.url)
        body = {"text": "我的卡号 6222 **** 1234", "path": "a/b", "big": 2**70, "x": [1.5, None]}
        assert await endpoint.request(json=body) == body
    session = next(iter(actionpool._sessions[asyncio.get_running_loop()].values()))
    assert session._json_serialize is actionpool.dumps
