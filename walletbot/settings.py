"""The one place the Python side reads configuration.

Rasa's own YAML files read the same environment variables as ``${VAR}``.
Development defaults live in ``config/dev.env``; anything set in the
environment wins.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEV_ENV_FILE = PROJECT_ROOT / "config" / "dev.env"

# Values that are fine on a laptop and fatal in production.
_DEV_SECRET_PREFIXES = ("dev-", "dev_", "changeme", "placeholder")
_SECRET_KEYS = ("RASA_AUTH_TOKEN",)
# WeChat: production needs real credentials and safe mode (an EncodingAESKey):
# in plaintext mode the message body, and so the sender's OpenID, is unsigned.
_SECRET_KEYS += ("WECHAT_TOKEN", "WECHAT_APP_ID", "WECHAT_APP_SECRET", "WECHAT_AES_KEY")
# Session keys of the web chat page and the agent desk.
_SECRET_KEYS += ("WEB_JWT_SECRET", "DESK_SECRET")


def read_env_file(path: Path) -> Dict[str, str]:
    """``KEY=VALUE`` lines of ``path``; blank lines and ``#`` comments skipped."""
    values: Dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        values[key.strip()] = value.strip()
    return values


def apply_dev_defaults(
    environ: Optional[os._Environ] = None, path: Path = DEV_ENV_FILE
) -> None:
    """Sets every development default that the environment does not set."""
    target = os.environ if environ is None else environ
    for key, value in read_env_file(path).items():
        target.setdefault(key, value)


@dataclass(frozen=True)
class Settings:
    """Runtime settings of the bot's Python code."""

    env: str
    rasa_auth_token: str

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> "Settings":
        """Reads the settings; missing values fall back to config/dev.env."""
        source = dict(read_env_file(DEV_ENV_FILE))
        source.update(os.environ if environ is None else environ)
        return cls(
            env=source.get("WALLETBOT_ENV", "dev"),
            rasa_auth_token=source.get("RASA_AUTH_TOKEN", ""),
        )

    @property
    def is_production(self) -> bool:
        """Whether this is the production profile."""
        return self.env == "production"


def placeholder_secrets(environ: Optional[Mapping[str, str]] = None) -> List[str]:
    """Names of secrets that are unset or still hold a development placeholder."""
    source = os.environ if environ is None else environ
    bad = []
    for key in _SECRET_KEYS:
        value = source.get(key, "")
        if not value or value.lower().startswith(_DEV_SECRET_PREFIXES):
            bad.append(key)
    return bad


def unsafe_dev_features(environ: Optional[Mapping[str, str]] = None) -> List[str]:
    """Development conveniences that production must switch off, as messages."""
    source = os.environ if environ is None else environ
    problems = []
    if source.get("WEB_DEMO_LOGIN", "").lower() in ("1", "true", "yes"):
        problems.append("WEB_DEMO_LOGIN=true lets anyone log in as a demo user: set it to false")
    agents = source.get("DESK_AGENTS_FILE", "")
    if not agents or Path(agents).name == "agents.dev.yml":
        problems.append("DESK_AGENTS_FILE must name your own agents file, not config/agents.dev.yml")
    return problems


def check_startup(environ: Optional[Mapping[str, str]] = None) -> int:
    """Exit status for start-up: production refuses placeholder secrets."""
    settings = Settings.from_env(environ)
    if not settings.is_production:
        return 0
    bad = placeholder_secrets(environ)
    problems = unsafe_dev_features(environ)
    if bad:
        problems.insert(0, "set real values for " + ", ".join(bad) + " (see .env.example)")
    for problem in problems:
        print(f"refusing to start in production: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(check_startup())
