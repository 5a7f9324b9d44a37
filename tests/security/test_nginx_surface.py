"""Attacks on the production profile's public port (nginx, config/prod/nginx/).

One stack for the module (scripts/prod.sh, as tests/prod starts it). The public
surface is the user and agent channels (/webhooks/wechat/, /webhooks/web/,
/webhooks/desk/, /webhooks/rest/) and /nginx-health. Rasa's HTTP API answers
404 through nginx even with the real token, and never reaches a replica; it
stays reachable on the replicas' own port, on 127.0.0.1 only (the admin
listener). Every public path has per-client-address limits; excess gets 429.

nginx limits by the client address, so each attack comes from its own
loopback address (127.0.0.2, 127.0.0.3, ...: every 127.x address is this
machine) and leaves the others (and 127.0.0.1, which tests/prod use) alone.
"""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, List, Tuple

import pytest

from tests.prod.conftest import ProdStack, http, http_from, prod_stack  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow

VICTIM = "surface-victim"


def log_lines(stack: ProdStack, start: int, client: str = "") -> List[str]:
    """Access-log lines written since offset ``start`` (of ``client`` only, if given)."""
    time.sleep(0.2)  # nginx writes the line once the response is sent
    lines = stack.access_log.read_text(errors="replace")[start:].splitlines()
    return [line for line in lines if line.startswith(f"{client} ")] if client else lines


def log_size(stack: ProdStack) -> int:
    return len(stack.access_log.read_text(errors="replace"))


def refused_by_nginx(line: str) -> bool:
    """The request ended at nginx: no replica answered it."""
    return "upstream=- " in line


def api_attacks(stack: ProdStack) -> List[Tuple[str, str, Any]]:
    """Rasa HTTP API calls with the real token, and paths that try to get around nginx."""
    token, conversation = stack.token, f"rest:{VICTIM}"
    return [
        ("GET", f"/conversations/{conversation}/tracker?token={token}", None),
        ("PUT", f"/model?token={token}", {"model_file": "/nonexistent/evil.tar.gz"}),
        ("DELETE", f"/model?token={token}", None),
        ("POST", f"/conversations/{conversation}/messages?token={token}",
         {"text": "管理员已验证身份", "sender": "user"}),
        ("POST", f"/conversations/{conversation}/trigger_intent?token={token}",
         {"name": "request_human"}),
        ("POST", f"/model/parse?token={token}", {"text": "你好"}),
        ("GET", f"/status?token={token}", None),
        ("GET", f"/domain?token={token}", None),
        ("GET", "/version", None),
        ("GET", "/", None),
        ("GET", "/webhooks/", None),
        ("GET", "/webhooks/socketio/", None),  # a channel not in credentials.yml
        ("GET", "/admin", None),
        # The metrics have ports of their own (never proxied); no path of nginx reaches them.
        ("GET", "/metrics", None),
        ("GET", "/webhooks/rest/%2e%2e/%2e%2e/metrics", None),
        # Around the prefixes: nginx matches the normalised path.
        ("GET", f"/webhooks/web/../../status?token={token}", None),
        ("GET", f"/webhooks/rest/%2e%2e/%2e%2e/status?token={token}", None),
        ("GET", f"/webhooks/wechat/..%2f..%2fstatus?token={token}", None),
        ("GET", f"//conversations/{conversation}/tracker?token={token}", None),
        ("GET", f"/webhooks/desk/%2e%2e%2f%2e%2e%2fconversations/{conversation}/tracker?token={token}",
         None),
    ]


def test_rasa_http_api_is_refused_through_nginx_even_with_the_real_token(prod_stack: ProdStack):
    stack = prod_stack
    replica = stack.replicas[0]
    stack.say(replica, VICTIM, "你好")
    # The token is real: on the replica's own port (this machine only) it reads the conversation.
    assert any(e["event"] == "user" for e in stack.tracker(replica, VICTIM)["events"])

    attacks = api_attacks(stack)
    start = log_size(stack)
    for method, path, body in attacks:
        status, answer, _ = http_from("127.0.0.1", stack.nginx, path, method=method, body=body)
        assert status in (400, 404), (method, path, status, answer)
        assert "events" not in str(answer) and VICTIM not in str(answer), (method, path, answer)
    lines = log_lines(stack, start)
    assert len(lines) == len(attacks), lines
    assert all(refused_by_nginx(line) for line in lines), lines  # no replica saw any of them

    # Nothing changed behind nginx's back: the model is loaded, no message was injected.
    status, body, _ = http(f"{replica}/status?token={stack.token}")
    assert status == 200 and body.get("model_file"), body
    texts = [e.get("text") for e in stack.tracker(replica, VICTIM)["events"] if e["event"] == "user"]
    assert texts == ["你好"], texts


def test_the_admin_listener_is_on_127_0_0_1_only(prod_stack: ProdStack):
    """The replicas' port (Rasa's API) is bound to 127.0.0.1, not to every address."""
    for port in (prod_stack.ports["rasa_1"], prod_stack.ports["rasa_2"]):
        with socket.socket() as sock:
            sock.settimeout(2)
            assert sock.connect_ex(("127.0.0.1", port)) == 0
        with socket.socket() as sock:
            sock.settimeout(2)
            assert sock.connect_ex(("127.0.0.2", port)) != 0, f"port {port} listens beyond 127.0.0.1"


def test_the_metrics_listeners_are_on_127_0_0_1_only_and_count_the_turns(prod_stack: ProdStack):
    stack = prod_stack
    stack.say(stack.replicas[0], "metrics-probe", "你好")
    for name in ("metrics_1", "metrics_2", "metrics_actions"):
        port = stack.ports[name]
        status, body, _ = http(f"http://127.0.0.1:{port}/metrics")
        assert status == 200 and "walletbot_" in str(body), (name, status)
        with socket.socket() as sock:
            sock.settimeout(2)
            assert sock.connect_ex(("127.0.0.2", port)) != 0, f"{name} listens beyond 127.0.0.1"
    _, replica_1, _ = http(f"http://127.0.0.1:{stack.ports['metrics_1']}/metrics")
    assert 'walletbot_turns_total{channel="rest",outcome="answered"}' in str(replica_1)


def test_the_channels_are_public(prod_stack: ProdStack):
    stack = prod_stack
    for path in ("/nginx-health", "/webhooks/wechat/", "/webhooks/web/", "/webhooks/web/chat",
                 "/webhooks/desk/health", "/webhooks/desk/login", "/webhooks/rest/"):
        status, body, _ = http_from("127.0.0.1", stack.nginx, path)
        assert status == 200, (path, status, body)


def nginx_429s(stack: ProdStack, start: int, client: str) -> List[str]:
    return [line for line in log_lines(stack, start, client)
            if '" 429 ' in line and refused_by_nginx(line)]


def test_a_burst_of_new_web_sessions_from_one_address_gets_429(prod_stack: ProdStack):
    """Minting web sessions (each with a fresh per-conversation rate limit) is limited per address."""
    stack = prod_stack
    attacker, neighbour = "127.0.0.2", "127.0.0.3"
    start = log_size(stack)
    results = [http_from(attacker, stack.nginx, "/webhooks/web/token", method="POST", body={})
               for _ in range(40)]
    statuses = [status for status, _, _ in results]
    assert statuses[0] == 200, results[0]
    assert 429 in statuses, statuses
    refused = nginx_429s(stack, start, attacker)
    assert len(refused) >= 10, (statuses, refused)
    # nginx's refusal is JSON ({"error": ...}), as the channels' own are.
    limited = results[statuses.index(429, 25)]
    assert limited[1] == {"error": "请求过于频繁，请稍后再试"}, limited
    assert limited[2].get("Content-Type", "").startswith("application/json"), limited
    # The same address on other paths, and another address on this one: still served.
    assert http_from(attacker, stack.nginx, "/webhooks/web/chat")[0] == 200
    assert http_from(attacker, stack.nginx, "/webhooks/wechat/")[0] == 200
    status, issued, _ = http_from(neighbour, stack.nginx, "/webhooks/web/token", method="POST", body={})
    assert status == 200 and issued.get("token"), issued


def test_a_burst_of_desk_logins_from_one_address_gets_429(prod_stack: ProdStack):
    """Password guessing on the agent desk: a handful of attempts, then 429 for that address."""
    stack = prod_stack
    attacker, agent = "127.0.0.4", "127.0.0.5"
    start = log_size(stack)

    def guess(n: int) -> Tuple[int, Any, Any]:
        return http_from(attacker, stack.nginx, "/webhooks/desk/login", method="POST",
                         body={"login": "guessed-agent", "password": f"guess-{n}"})

    with ThreadPoolExecutor(10) as pool:
        statuses = [status for status, _, _ in pool.map(guess, range(30))]
    assert 429 in statuses, statuses
    refused = nginx_429s(stack, start, attacker)
    assert len(refused) >= 15, (statuses, refused)
    # Other desk paths from that address still answer (the page, the health check) ...
    assert http_from(attacker, stack.nginx, "/webhooks/desk/login")[0] == 200
    assert http_from(attacker, stack.nginx, "/webhooks/desk/health")[0] == 200
    # ... and a real agent elsewhere logs in.
    status, body, _ = http_from(agent, stack.nginx, "/webhooks/desk/login", method="POST",
                                body={"login": "admin", "password": stack.agent_password})
    assert status == 200 and body.get("token"), body


def test_too_many_requests_at_once_from_one_address_get_429(prod_stack: ProdStack):
    """limit_conn: requests in progress at once per address (here: bodies that never come)."""
    stack = prod_stack
    attacker = "127.0.0.6"
    port = stack.ports["nginx"]
    held: List[socket.socket] = []
    try:
        for _ in range(50):  # the desk's limit
            sock = socket.create_connection(("127.0.0.1", port), timeout=10,
                                            source_address=(attacker, 0))
            sock.sendall(b"POST /webhooks/desk/api/tickets/1/reply HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n")
            held.append(sock)
        time.sleep(0.5)
        start = log_size(stack)
        status, body, _ = http_from(attacker, stack.nginx, "/webhooks/desk/health", timeout=10)
        assert status == 429, (status, body)
        assert nginx_429s(stack, start, attacker)
        # Another surface from the same address is counted apart.
        assert http_from(attacker, stack.nginx, "/webhooks/web/")[0] == 200
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.5)
    assert http_from(attacker, stack.nginx, "/webhooks/desk/health")[0] == 200


def test_wechat_servers_sharing_one_address_are_not_limited(prod_stack: ProdStack):
    """WeChat delivers every user's messages from a few Tencent addresses: 50 users at once
    from one address (as bench/latency.py --prod drives them) pass untouched, 600 requests
    as fast as they come (the replicas answer up to about 110 messages/s; at 100 r/s nginx
    refused some of the benchmark's messages)."""
    stack = prod_stack
    client = "127.0.0.7"

    def user(_: int) -> List[int]:
        return [http_from(client, stack.nginx, "/webhooks/wechat/")[0] for _ in range(12)]

    started = time.monotonic()
    with ThreadPoolExecutor(50) as pool:
        statuses = [status for got in pool.map(user, range(50)) for status in got]
    elapsed = time.monotonic() - started
    assert statuses == [200] * 600, (sorted(set(statuses)), statuses.count(429), elapsed)

