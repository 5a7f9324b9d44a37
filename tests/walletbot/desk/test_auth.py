"""Agent accounts and sessions."""

import time

import jwt
import pytest

from walletbot.desk.auth import (
    DEFAULT_MAX_TICKETS, AgentAccount, AgentDirectory, SessionSigner, hash_password, verify_password,
)
from walletbot.settings import PROJECT_ROOT


def test_password_hashes_are_salted_and_verify():
    first, second = hash_password("s3cret!"), hash_password("s3cret!")
    assert first != second and first.startswith("scrypt$")
    assert verify_password("s3cret!", first) and verify_password("s3cret!", second)
    assert not verify_password("s3cret", first)
    assert not verify_password("s3cret!", "garbage")
    assert not verify_password("s3cret!", "md5$abc")


def test_dev_accounts_file_loads_and_authenticates():
    directory = AgentDirectory.from_file(PROJECT_ROOT / "config" / "agents.dev.yml")
    assert directory.authenticate("agent1", "dev-agent-password").name == "小王"
    assert directory.authenticate("agent1", "wrong") is None
    assert directory.authenticate("nobody", "dev-agent-password") is None
    assert directory.authenticate(None, ["x"]) is None


@pytest.mark.parametrize("content, message", [
    ("agents: []", "no agents"),
    ("agents:\n  - login: a\n    name: A\n    password_hash: plain", "scrypt"),
    ("agents:\n  - login: a\n    name: A", "password_hash"),
])
def test_bad_accounts_files_say_what_is_wrong(tmp_path, content, message):
    path = tmp_path / "agents.yml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        AgentDirectory.from_file(path)


def test_missing_accounts_file():
    with pytest.raises(ValueError, match="DESK_AGENTS_FILE"):
        AgentDirectory.from_file("/nonexistent/agents.yml")


ACCOUNT = AgentAccount("agent1", "小王", "scrypt$x")
SECRET = "a-test-secret-that-is-at-least-32-bytes"


def test_sessions_expire():
    signer = SessionSigner(SECRET, hours=1)
    fresh = signer.issue(ACCOUNT)
    assert signer.verify(fresh)["sub"] == "agent1"
    stale = signer.issue(ACCOUNT, now=time.time() - 2 * 3600)
    assert signer.verify(stale) is None


def test_sessions_signed_with_another_key_or_audience_are_refused():
    signer = SessionSigner(SECRET)
    other = SessionSigner("another-secret-that-is-32-bytes-long!!")
    assert signer.verify(other.issue(ACCOUNT)) is None
    no_audience = jwt.encode({"sub": "agent1", "exp": time.time() + 60}, SECRET, algorithm="HS256")
    assert signer.verify(no_audience) is None
    unsigned = jwt.encode({"sub": "agent1", "exp": time.time() + 60, "aud": "walletbot-desk"},
                          None, algorithm="none")
    assert signer.verify(unsigned) is None
    for junk in (None, "", "a.b.c", 42, "x" * 5000):
        assert signer.verify(junk) is None


def test_a_session_secret_is_required():
    with pytest.raises(ValueError, match="DESK_SECRET"):
        SessionSigner("")


def test_roles_are_optional_and_checked(tmp_path):
    directory = AgentDirectory.from_file(PROJECT_ROOT / "config" / "agents.dev.yml")
    agent1, agent2 = directory.accounts["agent1"], directory.accounts["agent2"]
    assert agent1.roles == ("admin", "supervisor", "security") and agent1.is_admin
    assert agent1.is_supervisor and agent1.has_role("security")
    assert agent2.roles == () and not agent2.is_admin and not agent2.is_supervisor
    assert agent2.max_tickets == DEFAULT_MAX_TICKETS
    path = tmp_path / "agents.yml"
    hashed = hash_password("pw")
    for roles in ("[root]", "admin", "[admin, {x: 1}]"):
        path.write_text(f"agents:\n  - login: a\n    name: A\n    password_hash: '{hashed}'\n"
                        f"    roles: {roles}\n", encoding="utf-8")
        with pytest.raises(ValueError, match="roles"):
            AgentDirectory.from_file(path)
    for cap in ("0", "-1", "true", "'3'", "101", "2.5"):
        path.write_text(f"agents:\n  - login: a\n    name: A\n    password_hash: '{hashed}'\n"
                        f"    max_tickets: {cap}\n", encoding="utf-8")
        with pytest.raises(ValueError, match="max_tickets"):
            AgentDirectory.from_file(path)
    path.write_text(f"agents:\n  - login: a\n    name: A\n    password_hash: '{hashed}'\n"
                    "    max_tickets: 2\n", encoding="utf-8")
    assert AgentDirectory.from_file(path).accounts["a"].max_tickets == 2


def test_every_session_has_its_own_id_and_one_without_is_refused():
    signer = SessionSigner(SECRET)
    first, second = signer.verify(signer.issue(ACCOUNT)), signer.verify(signer.issue(ACCOUNT))
    assert first["jti"] and first["jti"] != second["jti"]
    # Tokens of the previous version had no id, so logout could not revoke them.
    old = jwt.encode({"sub": "agent1", "exp": time.time() + 60, "aud": "walletbot-desk"},
                     SECRET, algorithm="HS256")
    assert signer.verify(old) is None
    odd = jwt.encode({"sub": "agent1", "exp": time.time() + 60, "aud": "walletbot-desk",
                      "jti": 5}, SECRET, algorithm="HS256")
    assert signer.verify(odd) is None


async def test_password_checks_run_in_their_own_bounded_pool():
    import asyncio
    import threading

    from walletbot.desk.auth import LoginBusy, PasswordChecker

    checker = PasswordChecker(workers=2, queue=1)
    release = threading.Event()
    names = []

    def slow_check():
        names.append(threading.current_thread().name)
        release.wait(5)
        return True

    running = [asyncio.ensure_future(checker.run(slow_check)) for _ in range(3)]
    await asyncio.sleep(0.1)
    assert checker.busy
    with pytest.raises(LoginBusy):
        await checker.run(slow_check)
    release.set()
    assert await asyncio.gather(*running) == [True, True, True]
    assert not checker.busy
    assert names and all(n.startswith("desk-password") for n in names)
    checker.close()
    with pytest.raises(ValueError):
        PasswordChecker(workers=0)
