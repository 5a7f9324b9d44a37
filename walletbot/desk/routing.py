"""What the desk's feature modules get to add their routes to the desk blueprint.

:mod:`walletbot.desk.api` builds the blueprint with the session, login and
ticket routes, then hands a :class:`DeskRoutes` to each feature module's
``register(bp, routes)`` (service levels, agents' tools, canned replies, the
supervisor dashboard). The decorators are the API's own, so every feature route
checks the session, the JSON content type and the ticket exactly as the core
routes do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Dict

from sanic import response
from sanic.request import Request
from sanic.response import HTTPResponse

if TYPE_CHECKING:  # pragma: no cover
    from walletbot.desk.api import DeskInput
    from walletbot.desk.relay import Relay

Handler = Callable[..., Awaitable[HTTPResponse]]

HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def error(message: str, status: int) -> HTTPResponse:
    """A JSON error with the desk's security headers."""
    return response.json({"error": message}, status=status, headers=HEADERS)


def ok(body: Dict[str, Any], status: int = 200) -> HTTPResponse:
    """A JSON body with the desk's security headers."""
    return response.json(body, status=status, headers=HEADERS)


def json_body(request: Request) -> Dict[str, Any]:
    """The request's JSON object, or ``{}`` when it is missing or not an object."""
    try:
        body = request.json
    except Exception:
        return {}
    return body if isinstance(body, dict) else {}


@dataclass(frozen=True)
class DeskRoutes:
    """The desk's route decorators and services, for feature modules.

    Attributes:
        channel: The desk input channel (its ``desk`` service, ``directory``,
            ``client_address``).
        authed: ``handler(request, claims, ...)``: 401 without a session, 415 for
            a POST that is not JSON, 503 when the wallet DB is down.
        with_ticket: ``handler(request, claims, ticket)`` from ``<ticket_id>``; 404.
        relay: ``relay(request)``: the :class:`~walletbot.desk.relay.Relay` to the
            conversation (agent messages, pause, resume).
    """

    channel: "DeskInput"
    authed: Callable[[Handler], Handler]
    with_ticket: Callable[[Handler], Handler]
    relay: Callable[[Request], "Relay"]
