"""Agent accounts (from a config file, passwords hashed) and signed sessions."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

import jwt
import yaml

# scrypt parameters: ~16 MB and ~50 ms per check on this machine's class of CPU.
_N, _R, _P = 2**14, 8, 1
_SCHEME = "scrypt"


def hash_password(password: str, *, salt: Optional[bytes] = None) -> str:
    """``scrypt$N$r$p$salt$hash`` (base64) of the password."""
    if not isinstance(password, str) or not password:
        raise ValueError("password must be a non-empty string")
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    b64 = lambda b: base64.b64encode(b).decode("ascii")  # noqa: E731
    return f"{_SCHEME}${_N}${_R}${_P}${b64(salt)}${b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches the hash (constant-time comparison)."""
    try:
        scheme, n, r, p, salt, digest = encoded.split("$")
        if scheme != _SCHEME:
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt),
                                n=int(n), r=int(r), p=int(p), dklen=len(expected))
    except (ValueError, TypeError, AttributeError):
        return False
    return hmac.compare_digest(actual, expected)


# Compared against when the login is unknown, so timing does not tell which
# logins exist.
_DUMMY_HASH = hash_password("not-a-real-password", salt=b"\0" * 16)


@dataclass(frozen=True)
class AgentAccount:
    """A human agent who may use the desk."""

    login: str
    name: str
    password_hash: str


class AgentDirectory:
    """The agents of a YAML file: ``agents: [{login, name, password_hash}]``."""

    def __init__(self, accounts: Dict[str, AgentAccount]) -> None:
        self.accounts = accounts

    @classmethod
    def from_file(cls, path: Path) -> "AgentDirectory":
        """Loads the file.

        Raises:
            ValueError: Missing file, wrong shape, or a plain-text password.
        """
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise ValueError(f"agent accounts file {path} not found: set DESK_AGENTS_FILE") from None
        accounts: Dict[str, AgentAccount] = {}
        for i, item in enumerate(data.get("agents") or []):
            if not isinstance(item, dict) or not all(
                isinstance(item.get(k), str) and item.get(k) for k in ("login", "name", "password_hash")
            ):
                raise ValueError(f"{path}: agent #{i + 1} needs login, name and password_hash")
            if not item["password_hash"].startswith(_SCHEME + "$"):
                raise ValueError(
                    f"{path}: agent {item['login']!r} has no scrypt hash; create one with "
                    "`python -m walletbot.desk.passwords`"
                )
            accounts[item["login"]] = AgentAccount(item["login"], item["name"], item["password_hash"])
        if not accounts:
            raise ValueError(f"{path}: no agents defined")
        return cls(accounts)

    def authenticate(self, login: Any, password: Any) -> Optional[AgentAccount]:
        """The account if the password is right, else None."""
        if not isinstance(login, str) or not isinstance(password, str) or len(password) > 1024:
            return None
        account = self.accounts.get(login)
        ok = verify_password(password, account.password_hash if account else _DUMMY_HASH)
        return account if (account and ok) else None


class SessionSigner:
    """Signed, expiring agent sessions (JWT, HS256)."""

    def __init__(self, secret: str, *, hours: float = 8.0) -> None:
        if not secret:
            raise ValueError("the desk needs a session secret: set DESK_SECRET")
        self._secret = secret
        self.lifetime = int(hours * 3600)

    def issue(self, account: AgentAccount, *, now: Optional[float] = None) -> str:
        """A session token for the agent."""
        issued = int(now if now is not None else time.time())
        claims = {"sub": account.login, "name": account.name, "iat": issued,
                  "exp": issued + self.lifetime, "aud": "walletbot-desk"}
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def verify(self, token: Any) -> Optional[Dict[str, Any]]:
        """The claims of a valid, unexpired session, else None."""
        if not isinstance(token, str) or not token or len(token) > 4096:
            return None
        try:
            return jwt.decode(token, self._secret, algorithms=["HS256"],
                              audience="walletbot-desk", options={"require": ["sub", "exp"]})
        except jwt.PyJWTError:
            return None
