"""Agent accounts and sessions."""

import time

import jwt
import pytest

from walletbot.desk.auth import (
    AgentAccount, AgentDirectory, SessionSigner, hash_password, verify_password,
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
