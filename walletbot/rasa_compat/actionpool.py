"""Action-server calls reuse their TCP connections (HTTP keep-alive).

Rasa 3.6 opens an ``aiohttp.ClientSession`` for every request to an endpoint
(``EndpointConfig.request``) and closes it afterwards: every custom-action
call pays a TCP connect and a session set-up, several times a turn (the
action, the form's validation). Here, an endpoint whose ``endpoints.yml``
entry sets ``keep_alive_seconds`` (> 0) sends its requests through one
long-lived session per event loop (per Sanic worker) instead; its connector
keeps an idle connection that long. Endpoints without the key behave exactly
as in Rasa.

Keep ``keep_alive_seconds`` below the action server's own idle timeout
(Sanic's ``KEEP_ALIVE_TIMEOUT``, 5 s by default): the client then drops an
idle connection before the server can close it under a request in flight.

A request that fails because a *reused* connection turned out to be closed by
the server before any of the response arrived (the server restarted, or
closed it idle after all) is sent once more on a new connection, as browsers
do: the server closed that connection without reading the request. Any other
failure propagates as before.

Request bodies are encoded with ujson (a Rasa dependency) instead of the
standard library: the body carries the tracker's state and recent events, and
its encoding was 5 % of the Rasa process's CPU under load (bench/pyspy_profile.py
--gil); ujson takes 0.4 of json's time on it. For any value whose dict keys are
strings, ints, bools, None or finite floats, ``dumps`` decodes to what
``json.dumps`` would have sent, and what ujson refuses goes through
``json.dumps``, errors and all (tests/walletbot/rasa_compat/test_actionpool.py).
Left over: ujson also encodes what the standard library refuses (other dict
keys, stringified; ``Decimal``; objects with ``toDict`` or ``__json__``) and
spells a non-finite float key "inf". A body Rasa builds holds none of those:
its events come from, or go to, the tracker store as JSON.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import weakref
from typing import Any, Dict, Optional, Tuple

KEEP_ALIVE_KEY = "keep_alive_seconds"
# Connections per worker to one action server: the turns of a worker's
# concurrent conversations share them; aiohttp's default is 100.
POOL_LIMIT = 32

_installed = False
# event loop -> {endpoint identity: session}; a loop that is gone takes its sessions with it.
_sessions: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Dict[Tuple, Any]]" = \
    weakref.WeakKeyDictionary()


def keep_alive_seconds(endpoint: Any) -> float:
    """The endpoint's configured idle keep-alive (0: one connection per request, as Rasa does)."""
    value = (getattr(endpoint, "kwargs", None) or {}).get(KEEP_ALIVE_KEY) or 0
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{KEEP_ALIVE_KEY} must be a number of seconds, not {value!r}") from None
    if seconds < 0:
        raise ValueError(f"{KEEP_ALIVE_KEY} must not be negative, not {value!r}")
    return seconds


def dumps(value: Any) -> str:
    """A request body as JSON: ujson, or ``json.dumps`` for what ujson refuses."""
    import ujson

    try:
        return ujson.dumps(value)
    except Exception:  # noqa: BLE001 - json.dumps decides, and raises its own error
        return json.dumps(value)


def _identity(endpoint: Any) -> Tuple:
    basic = tuple(sorted((endpoint.basic_auth or {}).items()))
    return (endpoint.url, basic, endpoint.cafile, keep_alive_seconds(endpoint))


def _session(endpoint: Any) -> Any:
    import aiohttp
    from rasa.core.constants import DEFAULT_REQUEST_TIMEOUT

    loop = asyncio.get_running_loop()
    sessions = _sessions.setdefault(loop, {})
    key = _identity(endpoint)
    session = sessions.get(key)
    if session is None or session.closed:
        auth = None
        if endpoint.basic_auth:
            auth = aiohttp.BasicAuth(endpoint.basic_auth["username"],
                                     endpoint.basic_auth["password"])
        sslcontext = ssl.create_default_context(cafile=endpoint.cafile) if endpoint.cafile else None
        trace = aiohttp.TraceConfig()
        trace.on_connection_reuseconn.append(_mark_reused)
        session = aiohttp.ClientSession(
            auth=auth,
            timeout=aiohttp.ClientTimeout(total=DEFAULT_REQUEST_TIMEOUT),
            connector=aiohttp.TCPConnector(keepalive_timeout=keep_alive_seconds(endpoint),
                                           limit=POOL_LIMIT, ssl=sslcontext),
            trace_configs=[trace],
            json_serialize=dumps,
        )
        sessions[key] = session
    return session


async def _mark_reused(_session: Any, context: Any, _params: Any) -> None:
    if isinstance(context.trace_request_ctx, dict):
        context.trace_request_ctx["reused"] = True


async def close_sessions() -> None:
    """Closes this event loop's pooled sessions (at server stop)."""
    loop = asyncio.get_running_loop()
    for session in list(_sessions.pop(loop, {}).values()):
        await session.close()


async def pooled_request(endpoint: Any, method: str = "post", subpath: Optional[str] = None,
                         content_type: Optional[str] = "application/json",
                         compress: bool = False, **kwargs: Any) -> Any:
    """``EndpointConfig.request`` (Rasa 3.6) through the loop's long-lived session."""
    import aiohttp
    from aiohttp import ContentTypeError
    from rasa.utils.endpoints import ClientResponseError, concat_url

    headers: Dict[str, str] = {}
    if content_type:
        headers["Content-Type"] = content_type
    headers.update(kwargs.pop("headers", None) or {})
    headers.update(endpoint.headers or {})
    params = endpoint.combine_parameters(kwargs)
    url = concat_url(endpoint.url, subpath)

    for attempt in (1, 2):
        trace: Dict[str, Any] = {}
        try:
            async with _session(endpoint).request(
                method, url, headers=headers, params=params, compress=compress,
                trace_request_ctx=trace, **kwargs,
            ) as response:
                if response.status >= 400:
                    raise ClientResponseError(response.status, response.reason,
                                              await response.content.read())
                try:
                    return await response.json()
                except ContentTypeError:
                    return None
        except aiohttp.ServerDisconnectedError:
            # Closed before any of the response arrived: a connection the
            # server had already given up. Only then, and only once.
            if attempt == 2 or not trace.get("reused"):
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def install() -> None:
    """Patches ``EndpointConfig.request`` and Rasa's server stop. Idempotent."""
    global _installed
    if _installed:
        return
    import rasa.core.run
    from rasa.utils.endpoints import EndpointConfig

    rasa_request = EndpointConfig.request
    rasa_close_resources = rasa.core.run.close_resources

    async def request(self: Any, *args: Any, **kwargs: Any) -> Any:
        if keep_alive_seconds(self) > 0:
            return await pooled_request(self, *args, **kwargs)
        return await rasa_request(self, *args, **kwargs)

    async def close_resources(app: Any, loop: Any) -> None:
        try:
            await rasa_close_resources(app, loop)
        finally:
            await close_sessions()

    EndpointConfig.request = request  # type: ignore[assignment]
    # serve_application looks the listener up by name when it registers it.
    rasa.core.run.close_resources = close_resources  # type: ignore[assignment]
    _installed = True
