"""The agent desk resists attack: each guarantee is a test that plays the attacker.

Every test runs the desk as Rasa builds it (``DeskInput.from_credentials``)
on a real Sanic server in the test's event loop and attacks it over HTTP:

* a flood of wrong passwords is locked out and told (in Chinese) when to retry;
* the lock holds on every replica that shares Redis;
* a forged ``X-Forwarded-For`` from a non-proxy address does not escape the
  per-address limit;
* a token stops working the moment its agent logs out, on every replica;
* 50 concurrent bad logins do not stall a user's wallet lookup;
* the audit log never holds what agents wrote, and only admins read it.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid

import pytest
import sqlalchemy as sa
from sanic import response

from tests.walletbot.desk.harness import (
    PASSWORD, call, client, login, make_desk, serve_desk, token_of, wallet_service,
)
from walletbot.store import tickets as ticket_queries

LOCK_MINUTES = 1
MAX_FAILURES = 3


def strict_desk(wallet, **extra):
    """A desk that locks after 3 failures for a minute (keeps the tests short)."""
    return make_desk(wallet, login_max_failures=MAX_FAILURES, login_lock_minutes=LOCK_MINUTES,
                     **extra)


def random_address() -> str:
    return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"


async def flood(session, base, name, *, attempts=20, headers=None, each=None):
    """Wrong passwords until the desk says the login is locked; returns what it said."""
    answers = []
    for i in range(attempts):
        sent = each(i) if each else (name, headers)
        status, body, response_headers = await login(session, base, sent[0], f"wrong-{i}",
                                                     headers=sent[1])
        answers.append((status, body, response_headers))
        if status == 429 and isinstance(body, dict) and body.get("locked"):
            break
    return answers


def assert_locked(status, body, headers, minutes=LOCK_MINUTES):
    assert status == 429, (status, body)
    assert body["locked"] is True
    assert "锁定" in body["error"] and f"{minutes} 分钟后" in body["error"] and "重试" in body["error"]
    assert 0 < body["retry_after"] <= minutes * 60
    assert body["retry_at"]
    assert int(headers["Retry-After"]) == body["retry_after"]


@pytest.fixture
def wallet(tmp_path):
    return wallet_service(tmp_path)


@pytest.fixture
def shared_redis(redis_url, monkeypatch):
    """REDIS_URL set as in production, the desk's keys cleared before and after."""
    import redis

    monkeypatch.setenv("REDIS_URL", redis_url)
    server = redis.Redis.from_url(redis_url)

    def clear():
        for pattern in ("walletbot:desk:login:*", "walletbot:desk:revoked:*"):
            for key in server.scan_iter(pattern):
                server.delete(key)

    clear()
    yield redis_url
    clear()
    server.close()


# --- password guessing ------------------------------------------------------------


async def test_a_flood_of_wrong_passwords_is_locked_and_told_when_to_retry(wallet):
    async with serve_desk(strict_desk(wallet)) as desk, client() as http:
        answers = await flood(http, desk.base, "agent1")
        checked = [a for a in answers if a[0] == 401]
        # Only MAX_FAILURES guesses ever reach the password check.
        assert len(checked) < MAX_FAILURES
        assert_locked(*answers[-1])

        # Locked means locked: the right password does not get in either...
        status, body, headers = await login(http, desk.base, "agent1", PASSWORD)
        assert_locked(status, body, headers)
        # ...and the login page says so, in Chinese, with when to retry.
        status, page, _ = await call(http, "POST", f"{desk.base}/login",
                                     form={"login": "agent1", "password": PASSWORD})
        assert status == 429 and "登录已临时锁定" in page and f"{LOCK_MINUTES} 分钟后" in page
        assert 'id="login-error" hidden' not in page


async def test_the_lock_holds_on_every_replica_sharing_redis(wallet, shared_redis):
    replica_1, replica_2 = strict_desk(wallet), strict_desk(wallet)
    async with serve_desk(replica_1) as one, serve_desk(replica_2) as two, client() as http:
        attacker = {"X-Forwarded-For": random_address()}  # via nginx (127.0.0.1)
        answers = await flood(http, one.base, "agent2", headers=attacker)
        assert_locked(*answers[-1])
        # The agent, from elsewhere, on the other replica: the account is locked there too.
        status, body, headers = await login(http, two.base, "agent2", PASSWORD,
                                            headers={"X-Forwarded-For": random_address()})
        assert_locked(status, body, headers)
        # And so is the attacker's address, whatever account it tries next.
        status, body, headers = await login(http, two.base, "agent1", PASSWORD, headers=attacker)
        assert_locked(status, body, headers)
        # Others are not locked out.
        status, body, _ = await login(http, two.base, "agent1", PASSWORD,
                                      headers={"X-Forwarded-For": random_address()})
        assert status == 200, body


async def test_a_forged_forwarded_for_from_a_non_proxy_does_not_escape_the_address_limit(wallet):
    def forged(i):
        fake = random_address()
        return f"probe{i}-{uuid.uuid4().hex[:4]}", {"X-Forwarded-For": fake, "X-Real-IP": fake}

    async with serve_desk(strict_desk(wallet)) as desk:
        # 127.0.0.2 is not the trusted proxy (127.0.0.1): its headers are its own word.
        async with client(source="127.0.0.2") as attacker:
            answers = await flood(attacker, desk.base, None, each=forged)
            assert_locked(*answers[-1])
            status, body, headers = await login(attacker, desk.base, "agent1", PASSWORD,
                                                headers=forged(99)[1])
            assert_locked(status, body, headers)
        # The lock is on the attacker's real address only.
        async with client() as agent:
            status, body, _ = await login(agent, desk.base, "agent1", PASSWORD)
            assert status == 200, body
            _, audit, _ = await call(agent, "GET", f"{desk.base}/api/audit", token=body["token"])
        failures = [e for e in audit["entries"] if e["event"] == "login_failure"]
        assert failures and {e["address"] for e in failures} == {"127.0.0.2"}


# --- sessions ---------------------------------------------------------------------


async def test_a_token_stops_working_at_once_after_logout(wallet):
    async with serve_desk(make_desk(wallet)) as desk, client() as http:
        token = await token_of(http, desk.base, "agent1")
        assert (await call(http, "GET", f"{desk.base}/api/me", token=token))[0] == 200
        assert (await call(http, "POST", f"{desk.base}/logout", token=token))[0] == 200
        for path in ("api/me", "api/tickets"):
            status, body, _ = await call(http, "GET", f"{desk.base}/{path}", token=token)
            assert status == 401, (path, body)
        # The browser's cookie carried the same session: it is refused too.
        status, _, _ = await call(http, "GET", f"{desk.base}/api/me",
                                  headers={"Cookie": f"desk_session={token}"})
        assert status == 401


async def test_a_token_logged_out_on_one_replica_fails_on_the_other(wallet, shared_redis):
    async with serve_desk(make_desk(wallet)) as one, serve_desk(make_desk(wallet)) as two, \
            client() as http:
        token = await token_of(http, one.base, "agent2")
        assert (await call(http, "GET", f"{two.base}/api/me", token=token))[0] == 200
        assert (await call(http, "POST", f"{one.base}/logout", token=token))[0] == 200
        status, body, _ = await call(http, "GET", f"{two.base}/api/me", token=token)
        assert status == 401, body


# --- a login flood against the wallet DB -------------------------------------------


async def test_fifty_concurrent_bad_logins_do_not_stall_a_users_wallet_lookup(wallet):
    def lookup_route(app):
        @app.route("/lookup")
        async def lookup(_request):
            user = await wallet.user_for(channel="rest", sender_id="zhangsan")
            return response.json({"user": user.user_id if user else None})

    async with serve_desk(make_desk(wallet), extra_routes=lookup_route) as desk, client() as http:
        root = desk.base.rsplit("/webhooks", 1)[0]
        assert (await call(http, "GET", f"{root}/lookup"))[1] == {"user": "U1001"}  # DB ready

        async def bad_login(i):
            # From as many addresses as logins (through nginx): no throttle key repeats.
            return await login(http, desk.base, f"nobody{i}", "wrong",
                               headers={"X-Forwarded-For": f"10.9.{i // 250}.{i % 250 + 1}"})

        logins = [asyncio.ensure_future(bad_login(i)) for i in range(50)]
        await asyncio.sleep(0.05)  # the flood is in
        started = time.monotonic()
        status, body, _ = await call(http, "GET", f"{root}/lookup")
        took = time.monotonic() - started
        answers = await asyncio.gather(*logins)
        assert status == 200 and body == {"user": "U1001"}
        assert took < 1.0, f"the wallet lookup took {took:.2f} s behind the login flood"
        # The excess was refused at once, not queued without limit.
        busy = [b for s, b, _ in answers if s == 429]
        assert busy and all("请稍后再试" in b["error"] for b in busy)
        assert all(s in (401, 429) for s, _, _ in answers)


# --- the audit log ----------------------------------------------------------------


async def test_the_audit_log_holds_no_message_text_and_only_admins_read_it(wallet):
    ticket, _ = await wallet.run(ticket_queries.open_ticket, channel="rest", sender_id="zhangsan",
                                 category="request_human", priority=3, user_id="U1001")
    marker = f"MARK{uuid.uuid4().hex[:8]}"
    text = f"{marker} 已为您核查提现，卡号6222020200112233445"
    typed_password = "hunter2-typed-in-the-login-field"
    async with serve_desk(make_desk(wallet)) as desk, client() as http:
        assert (await login(http, desk.base, typed_password, "x"))[0] == 401
        agent2 = await token_of(http, desk.base, "agent2")  # not an admin
        url = f"{desk.base}/api/tickets/{ticket.ticket_id}"
        assert (await call(http, "POST", f"{url}/claim", body={}, token=agent2))[0] == 200
        assert (await call(http, "POST", f"{url}/reply", body={"text": text}, token=agent2))[0] == 200
        assert (await call(http, "POST", f"{url}/resolve", body={}, token=agent2))[0] == 200

        status, body, _ = await call(http, "GET", f"{desk.base}/api/audit", token=agent2)
        assert status == 403, body
        admin = await token_of(http, desk.base, "agent1")
        status, body, _ = await call(http, "GET", f"{desk.base}/api/audit", token=admin)
        assert status == 200, body
    entries = body["entries"]
    done = {(e["event"], e["actor"], e["ticket_id"]) for e in entries}
    assert {("claim", "agent2", ticket.ticket_id), ("reply", "agent2", ticket.ticket_id),
            ("resolve", "agent2", ticket.ticket_id)} <= done
    assert {"login_success", "login_failure"} <= {e["event"] for e in entries}
    assert all(e["address"] == "127.0.0.1" and e["at"] for e in entries)
    # Nothing of what was written, or typed as a login, is in the log: not in
    # the API's answer, not anywhere in the table.
    engine = wallet._engine_ready()
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(sa.text("SELECT * FROM audit_log"))]
    for dump in (str(entries), str(rows)):
        assert marker not in dump and "6222020200112233445" not in dump
        assert "已为您核查" not in dump and "hunter2" not in dump
