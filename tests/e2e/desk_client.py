"""A small HTTP client for the desk API and the tracker, used by e2e tests."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any, Dict, Optional, Tuple


def request(url: str, *, body: Any = None, token: Optional[str] = None,
            headers: Optional[Dict[str, str]] = None, method: Optional[str] = None,
            raw: Optional[bytes] = None) -> Tuple[int, Any]:
    """``(status, parsed JSON or text)``; HTTP errors are returned, not raised."""
    all_headers = dict(headers or {})
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
        all_headers.setdefault("Content-Type", "application/json")
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, headers=all_headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, payload = error.code, error.read()
    try:
        return status, json.loads(payload)
    except ValueError:
        return status, payload.decode(errors="replace")


class Desk:
    """Logged-in agent using the JSON API."""

    def __init__(self, base: str, login: str, password: str = "dev-agent-password") -> None:
        self.base = f"{base}/webhooks/desk"
        status, body = request(f"{self.base}/login", body={"login": login, "password": password})
        assert status == 200, body
        self.token = body["token"]

    def get(self, path: str) -> Tuple[int, Any]:
        return request(f"{self.base}/api/{path}", token=self.token)

    def post(self, path: str, body: Any = None) -> Tuple[int, Any]:
        return request(f"{self.base}/api/{path}", body=body if body is not None else {},
                       token=self.token)

    def ticket_for(self, sender: str) -> Dict[str, Any]:
        status, body = self.get("tickets")
        assert status == 200, body
        matches = [t for t in body["tickets"] if t["sender_id"] == sender]
        assert len(matches) == 1, f"{len(matches)} open tickets for {sender}"
        status, detail = self.get(f"tickets/{matches[0]['id']}")
        assert status == 200, detail
        return detail


def tracker(base: str, sender: str, token: str = "dev-rasa-token") -> Dict[str, Any]:
    """The tracker of ``sender``'s conversation (a bare sender is a REST one)."""
    conversation = sender if ":" in sender else f"rest:{sender}"
    status, body = request(f"{base}/conversations/{conversation}/tracker?token={token}")
    assert status == 200, body
    return body
