"""Agent accounts (from a config file, passwords hashed) and signed sessions.

Password checks run in their own small pool (:class:`PasswordChecker`), never
in the event loop's default executor, which the channels' wallet-DB calls
use: a flood of logins waits for, or is refused by, that pool alone.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple, TypeVar

import jwt
import yaml

# scrypt parameters: ~16 MB and ~50 ms per check on this machine's class of CPU.
_N, _R, _P = 2**14, 8, 1
_SCHEME = "scrypt"
# Roles an agents file may give (``roles: [admin]``): admins read the audit log,
# supervisors see the dashboard and move anyone's tickets, security may lift a
# freeze the bot applied.
ROLES: Tuple[str, ...] = ("admin", "supervisor", "security")
# Open tickets an agent holds at most unless the agents file says otherwise.
DEFAULT_MAX_TICKETS = 5
T = TypeVar("T")


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
    roles: Tuple[str, ...] = ()
    # Concurrent tickets the agent may hold (claimed, transferred or auto-assigned).
    max_tickets: int = DEFAULT_MAX_TICKETS

    @property
    def is_admin(self) -> bool:
        """Whether the agent may read the audit log."""
        return "admin" in self.roles

    @property
    def is_supervisor(self) -> bool:
        """Whether the agent sees the supervisor dashboard and moves others' tickets."""
        return "supervisor" in self.roles

    def has_role(self, role: str) -> bool:
        """Whether the agents file gives this agent ``role`` (one of :data:`ROLES`)."""
        return role in self.roles


class AgentDirectory:
    """The agents of a YAML file: ``agents: [{login, name, password_hash, roles?, max_tickets?}]``.

    ``roles`` is optional: a list of :data:`ROLES` (``[admin]``). ``max_tickets``
    is optional: a positive number of tickets held at once (default
    :data:`DEFAULT_MAX_TICKETS`).
    """

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
            roles = item.get("roles") or []
            if not isinstance(roles, list) or not all(r in ROLES for r in roles):
                raise ValueError(
                    f"{path}: agent {item['login']!r} has roles {roles!r}; "
                    f"roles must be a list of {', '.join(ROLES)}"
                )
            cap = item.get("max_tickets", DEFAULT_MAX_TICKETS)
            if isinstance(cap, bool) or not isinstance(cap, int) or not 0 < cap <= 100:
                raise ValueError(
                    f"{path}: agent {item['login']!r} has max_tickets {cap!r}; "
                    "give a whole number from 1 to 100"
                )
            accounts[item["login"]] = AgentAccount(item["login"], item["name"], item["password_hash"],
                                                   tuple(roles), cap)
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


class LoginBusy(RuntimeError):
    """Too many password checks running or waiting: try again shortly."""


class PasswordChecker:
    """Runs password checks in a small pool of its own, with a bounded queue.

    scrypt is deliberately slow. In the default executor, a flood of logins
    would queue ahead of every wallet-DB call of the channels; here at most
    ``workers`` checks run and ``queue`` more wait, and any further login is
    refused at once (:class:`LoginBusy`).

    Args:
        workers: Threads checking passwords.
        queue: Checks that may wait for a thread.
    """

    def __init__(self, workers: int = 2, queue: int = 8) -> None:
        if workers < 1 or queue < 0:
            raise ValueError("workers must be at least 1 and queue not negative")
        self.workers = workers
        self.limit = workers + queue
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="desk-password")
        self._pending = 0

    @property
    def busy(self) -> bool:
        """Whether a new check would be refused."""
        return self._pending >= self.limit

    async def run(self, check: Callable[..., T], *args: Any) -> T:
        """``check(*args)`` in the pool.

        Raises:
            LoginBusy: ``workers + queue`` checks are running or waiting already.
        """
        # Only the event loop's thread changes the count: no lock needed.
        if self._pending >= self.limit:
            raise LoginBusy("too many logins at once")
        self._pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, check, *args)
        finally:
            self._pending -= 1

    def close(self) -> None:
        """Stops the threads (after the running checks)."""
        self._executor.shutdown(wait=False)


class SessionSigner:
    """Signed, expiring agent sessions (JWT, HS256), each with its own id (``jti``)."""

    def __init__(self, secret: str, *, hours: float = 8.0) -> None:
        if not secret:
            raise ValueError("the desk needs a session secret: set DESK_SECRET")
        self._secret = secret
        self.lifetime = int(hours * 3600)

    def issue(self, account: AgentAccount, *, now: Optional[float] = None) -> str:
        """A session token for the agent."""
        issued = int(now if now is not None else time.time())
        claims = {"sub": account.login, "name": account.name, "iat": issued,
                  "exp": issued + self.lifetime, "aud": "walletbot-desk",
                  "jti": secrets.token_urlsafe(18)}
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def verify(self, token: Any) -> Optional[Dict[str, Any]]:
        """The claims of a valid, unexpired session, else None (revocation is checked apart)."""
        if not isinstance(token, str) or not token or len(token) > 4096:
            return None
        try:
            claims = jwt.decode(token, self._secret, algorithms=["HS256"],
                                audience="walletbot-desk",
                                options={"require": ["sub", "exp", "jti"]})
        except jwt.PyJWTError:
            return None
        jti = claims.get("jti")
        if not isinstance(jti, str) or not 0 < len(jti) <= 64:
            return None
        return claims
