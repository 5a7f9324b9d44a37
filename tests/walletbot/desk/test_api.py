"""The desk's HTTP API in a Sanic server: login throttling, cookies, sessions, the audit route."""

from __future__ import annotations

import time

import pytest
import yaml

from tests.walletbot.desk.harness import (
    PASSWORD, call, client, login, make_desk, serve_desk, token_of, wallet_service,
)
from walletbot.desk.api import DeskInput
from walletbot.desk.revocation import RedisRevocationList
from walletbot.desk.throttle import LoginThrottle, RedisLoginThrottle
from walletbot.settings import PROJECT_ROOT, read_env_file
from walletbot.store import audit as audit_queries


@pytest.fixture
def wallet(tmp_path):
    return wallet_service(tmp_path)


def cookie_header(headers):
    return "; ".join(headers.getall("Set-Cookie", []))


async def test_login_page_shows_an_error_only_when_there_is_one(wallet):
    async with serve_desk(make_desk(wallet)) as desk, client() as http:
        status, page, _ = await call(http, "GET", f"{desk.base}/login")
        assert status == 200 and 'id="login-error" hidden' in page and 'data-failed=""' in page
        status, page, _ = await call(http, "GET", f"{desk.base}/login?failed=1")
        assert 'id="login-error">账号或密码错误，请重试。<' in page and 'data-failed="1"' in page
        status, _, headers = await call(http, "POST", f"{desk.base}/login",
                                        form={"login": "agent1", "password": "wrong"})
        assert status == 303 and headers["Location"] == "login?failed=1"


@pytest.mark.parametrize("production", [False, True])
async def test_the_session_cookie_is_secure_in_production(wallet, monkeypatch, production):
    if production:
        monkeypatch.setenv("WALLETBOT_ENV", "production")
    async with serve_desk(make_desk(wallet)) as desk, client() as http:
        status, _, headers = await call(http, "POST", f"{desk.base}/login",
                                        form={"login": "agent1", "password": PASSWORD})
        assert status == 303
        cookie = cookie_header(headers)
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/webhooks/desk" in cookie
        assert ("Secure" in cookie) is production
        status, _, headers = await call(http, "POST", f"{desk.base}/logout")
        assert status == 200
        cleared = cookie_header(headers)
        assert "Max-Age=0" in cleared and ("Secure" in cleared) is production


async def test_me_tells_the_roles(wallet):
    async with serve_desk(make_desk(wallet)) as desk, client() as http:
        status, body, _ = await login(http, desk.base, "agent1")
        assert status == 200 and body["roles"] == ["admin", "supervisor", "security"]
        _, me, _ = await call(http, "GET", f"{desk.base}/api/me", token=body["token"])
        assert me == {"login": "agent1", "name": "小王", "roles": ["admin", "supervisor", "security"]}
        token = await token_of(http, desk.base, "agent2")
        _, me, _ = await call(http, "GET", f"{desk.base}/api/me", token=token)
        assert me["roles"] == []


async def test_a_success_resets_the_count_and_a_short_back_off_is_waited_out(wallet):
    async with serve_desk(make_desk(wallet, login_max_failures=3)) as desk, client() as http:
        for _ in range(2):
            assert (await login(http, desk.base, "agent1", "wrong"))[0] == 401
        started = time.monotonic()
        assert (await login(http, desk.base, "agent1"))[0] == 200  # 1 s back-off: waited
        assert time.monotonic() - started >= 0.5
        for _ in range(2):  # counted from zero again: no lock
            assert (await login(http, desk.base, "agent1", "wrong"))[0] == 401
        assert (await login(http, desk.base, "agent1"))[0] == 200


async def test_behind_the_proxy_each_forwarded_address_is_counted_apart(wallet):
    async with serve_desk(make_desk(wallet, login_max_failures=2)) as desk, client() as http:
        attacker = {"X-Forwarded-For": "198.51.100.66"}
        assert (await login(http, desk.base, "ghost1", "x", headers=attacker))[0] == 401
        status, body, _ = await login(http, desk.base, "ghost2", "x", headers=attacker)
        assert status == 429 and body["locked"]
        assert (await login(http, desk.base, "agent2", headers=attacker))[0] == 429
        agent = {"X-Forwarded-For": "198.51.100.7"}
        status, body, _ = await login(http, desk.base, "agent2", headers=agent)
        assert status == 200
        _, audit, _ = await call(http, "GET", f"{desk.base}/api/audit",
                                 token=await token_of(http, desk.base, "agent1"))
    events = [(e["event"], e["actor"], e["address"]) for e in reversed(audit["entries"])]
    assert events[:4] == [
        ("login_failure", "?gh***", "198.51.100.66"),
        ("login_failure", "?gh***", "198.51.100.66"),
        ("login_locked", "?gh***", "198.51.100.66"),
        ("login_success", "agent2", "198.51.100.7"),
    ]


async def test_a_full_password_pool_answers_at_once(wallet):
    channel = make_desk(wallet)
    channel.checker._pending = channel.checker.limit  # every slot taken
    async with serve_desk(channel) as desk, client() as http:
        started = time.monotonic()
        status, body, headers = await login(http, desk.base, "agent1")
        assert time.monotonic() - started < 0.5
        assert status == 429 and body["error"] == "登录请求过多，请稍后再试。"
        assert headers["Retry-After"] == "1"
        status, page, _ = await call(http, "POST", f"{desk.base}/login",
                                     form={"login": "agent1", "password": PASSWORD})
        assert status == 429 and "请稍后再试" in page
    channel.checker._pending = 0
    # Nothing was counted against the account.
    assert isinstance(channel.throttle, LoginThrottle) and channel.throttle._records == {}


async def test_the_audit_route_pages_and_checks_its_parameters(wallet):
    for _ in range(5):
        await wallet.run(audit_queries.record_event, event="claim", actor="agent2",
                         address="10.0.0.1", ticket_id=7)
    async with serve_desk(make_desk(wallet)) as desk, client() as http:
        token = await token_of(http, desk.base, "agent1")
        url = f"{desk.base}/api/audit"
        _, first, _ = await call(http, "GET", f"{url}?limit=2", token=token)
        assert [e["event"] for e in first["entries"]] == ["login_success", "claim"]
        before = first["entries"][-1]["id"]
        _, page, _ = await call(http, "GET", f"{url}?limit=10&before={before}", token=token)
        assert len(page["entries"]) == 4 and all(e["id"] < before for e in page["entries"])
        assert set(page["entries"][0]) == {"id", "event", "actor", "address", "at",
                                           "ticket_id", "user_id"}
        for bad in ("limit=-1", "limit=abc", "before=1%20OR%201", "limit=99999", "limit=%C2%B2"):
            assert (await call(http, "GET", f"{url}?{bad}", token=token))[0] == 400, bad
        async with client() as stranger:
            assert (await call(stranger, "GET", url))[0] == 401


async def test_sessions_fail_closed_when_the_shared_revocation_list_is_down(wallet):
    channel = make_desk(wallet)
    channel.revocations = RedisRevocationList("redis://127.0.0.1:1/0", timeout=0.3)
    async with serve_desk(channel) as desk, client() as http:
        token = await token_of(http, desk.base, "agent1")
        status, body, _ = await call(http, "GET", f"{desk.base}/api/me", token=token)
        assert status == 503 and "会话服务暂时不可用" in body["error"]
        status, _, _ = await call(http, "POST", f"{desk.base}/logout", token=token)
        assert status == 503


def test_limits_come_from_credentials_and_bad_ones_are_refused(monkeypatch):
    base = {"secret": "s" * 32, "agents_file": "config/agents.dev.yml"}
    monkeypatch.delenv("REDIS_URL", raising=False)
    channel = DeskInput.from_credentials({**base, "login_max_failures": "4",
                                          "login_lock_minutes": "2.5"})
    assert isinstance(channel.throttle, LoginThrottle)
    assert (channel.throttle.max_failures, channel.throttle.lock_seconds) == (4, 150)
    defaults = DeskInput.from_credentials({**base, "login_max_failures": ""})
    assert (defaults.throttle.max_failures, defaults.throttle.lock_seconds) == (5, 900)
    for key, value, variable in (("login_max_failures", "0", "DESK_LOGIN_MAX_FAILURES"),
                                 ("login_max_failures", "many", "DESK_LOGIN_MAX_FAILURES"),
                                 ("login_lock_minutes", "-1", "DESK_LOGIN_LOCK_MINUTES")):
        with pytest.raises(ValueError, match=variable):
            DeskInput.from_credentials({**base, key: value})
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    shared = DeskInput.from_credentials(base)
    assert isinstance(shared.throttle, RedisLoginThrottle)
    assert isinstance(shared.revocations, RedisRevocationList)
    proxied = DeskInput.from_credentials({**base, "trusted_proxies": "172.16.0.0/12"})
    assert "172.20.0.3" in proxied.trusted_proxies and "127.0.0.1" not in proxied.trusted_proxies


def test_every_desk_variable_has_a_dev_and_a_production_default():
    desk = yaml.safe_load((PROJECT_ROOT / "credentials.yml").read_text())["walletbot.desk.api.DeskInput"]
    assert desk["login_max_failures"] == "${DESK_LOGIN_MAX_FAILURES}"
    assert desk["login_lock_minutes"] == "${DESK_LOGIN_LOCK_MINUTES}"
    for path in (PROJECT_ROOT / "config" / "dev.env", PROJECT_ROOT / "config" / "prod" / "prod.env"):
        values = read_env_file(path)
        assert values["DESK_LOGIN_MAX_FAILURES"] == "5" and values["DESK_LOGIN_LOCK_MINUTES"] == "15"


async def test_malformed_logins_are_refused_without_being_counted(wallet):
    async with serve_desk(make_desk(wallet, login_max_failures=2)) as desk, client() as http:
        for body in ({}, {"login": ["a"], "password": {"x": 1}}, {"login": "agent1", "password": ""},
                     {"login": "agent1", "password": "x" * 100_000}, {"login": "a" * 300, "password": "x"}):
            status, answer, _ = await call(http, "POST", f"{desk.base}/login", body=body)
            assert status == 401 and answer == {"error": "账号或密码错误"}
        assert desk.channel.throttle._records == {}
        assert (await login(http, desk.base, "agent1"))[0] == 200
        _, audit, _ = await call(http, "GET", f"{desk.base}/api/audit",
                                 token=await token_of(http, desk.base, "agent1"))
    assert [e["event"] for e in audit["entries"]] == ["login_success", "login_success"]
