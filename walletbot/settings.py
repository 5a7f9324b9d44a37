"""The one place the Python side reads configuration.

Rasa's own YAML files read the same environment variables as ``${VAR}``.
Development defaults live in ``config/dev.env``; anything set in the
environment wins.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional

logger = logging.getLogger(__name__)

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


DEFAULT_RATE_LIMIT_PER_MINUTE = 30
DEFAULT_WALLET_DB_URL = "sqlite:///var/wallet.db"


# Set by the Dockerfile: this process runs from the built image, which carries
# no development defaults (.dockerignore leaves config/dev.env and
# config/agents.dev.yml out) and serves production only (check_startup).
IN_IMAGE_MARKER = "WALLETBOT_IN_IMAGE"


def in_image(environ: Optional[Mapping[str, str]] = None) -> bool:
    """Whether the environment says this runs from the built image (``WALLETBOT_IN_IMAGE``)."""
    source = os.environ if environ is None else environ
    return _flag(source.get(IN_IMAGE_MARKER))


def _source(environ: Optional[Mapping[str, str]]) -> Dict[str, str]:
    """The environment, over config/dev.env's defaults outside production (never in the image)."""
    given = dict(os.environ if environ is None else environ)
    if given.get("WALLETBOT_ENV", "dev") == "production" or in_image(given):
        return given
    source = dict(read_env_file(DEV_ENV_FILE)) if DEV_ENV_FILE.exists() else {}
    source.update(given)
    return source


def _per_minute(raw: str) -> int:
    try:
        return int(raw or DEFAULT_RATE_LIMIT_PER_MINUTE)
    except ValueError:
        logger.warning("RATE_LIMIT_PER_MINUTE is not a number; using %d",
                       DEFAULT_RATE_LIMIT_PER_MINUTE)
        return DEFAULT_RATE_LIMIT_PER_MINUTE


DEFAULT_DESK_PRESENCE_SECONDS = 60


def _flag(raw: Optional[str]) -> bool:
    return (raw or "").strip().lower() in ("1", "true", "yes", "on")


def _presence_seconds(raw: Optional[str]) -> int:
    try:
        seconds = int((raw or "").strip() or DEFAULT_DESK_PRESENCE_SECONDS)
    except ValueError:
        seconds = 0
    if seconds <= 0:
        logger.warning("DESK_PRESENCE_SECONDS must be a positive number; using %d",
                       DEFAULT_DESK_PRESENCE_SECONDS)
        return DEFAULT_DESK_PRESENCE_SECONDS
    return seconds


DEFAULT_TURN_CONCURRENCY = 0  # off: the side-by-side runs measured no gain (bench/RESULTS.md, fifth round)


def _turn_concurrency(raw: Optional[str]) -> int:
    """TURN_CONCURRENCY: a whole number >= 0 (0: no bound); unset: the default."""
    text = (raw or "").strip()
    try:
        value = int(text or DEFAULT_TURN_CONCURRENCY)
    except ValueError:
        value = -1
    if value < 0:
        logger.warning("TURN_CONCURRENCY must be a whole number >= 0 (0: no bound), not %r; "
                       "using %d", text, DEFAULT_TURN_CONCURRENCY)
        return DEFAULT_TURN_CONCURRENCY
    return value


def unfreeze_checks(raw: Optional[str]) -> "tuple[tuple[str, str], ...]":
    """``id:label,id:label`` (DESK_UNFREEZE_VERIFICATIONS) as ``((id, label), ...)``.

    Items without an id or a label are skipped (and logged).
    """
    checks = []
    for item in (raw or "").split(","):
        key, _, label = item.partition(":")
        key, label = key.strip(), label.strip()
        if key and label:
            checks.append((key, label))
        elif item.strip():
            logger.warning("DESK_UNFREEZE_VERIFICATIONS: %r is not id:label; skipped", item.strip())
    return tuple(checks)


LOG_FORMATS = ("json", "text")


def _log_format(source: Mapping[str, str]) -> str:
    """LOG_FORMAT; unset: json in production (for log collectors), text elsewhere (for people)."""
    default = "json" if source.get("WALLETBOT_ENV", "dev") == "production" else "text"
    raw = (source.get("LOG_FORMAT") or "").strip().lower()
    if raw and raw not in LOG_FORMATS:
        logger.warning("LOG_FORMAT must be json or text, not %r; using %s", raw, default)
    return raw if raw in LOG_FORMATS else default


def _port_or_off(source: Mapping[str, str], key: str) -> Optional[int]:
    """A TCP port; unset, empty or 0: None (that listener is off)."""
    raw = (source.get(key) or "").strip()
    try:
        port = int(raw or 0)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        logger.warning("%s must be a port number (0: off), not %r; metrics are off", key, raw)
        return None
    return port or None


@dataclass(frozen=True)
class Settings:
    """Runtime settings of the bot's Python code (servers and actions).

    Attributes:
        env: ``dev`` or ``production``.
        rasa_auth_token: Token of Rasa's HTTP API.
        redis_url: Redis shared by replicas (rate limit, fan-out, WeChat retries), if any.
        rate_limit_per_minute: Messages one conversation may send per minute (0: off;
            production refuses 0).
        rest_token: Server-to-server token the REST channel requires, if set.
        wallet_db_url: SQLAlchemy URL of the wallet DB.
        tracker_db_url: SQLAlchemy URL of Rasa's tracker store.
        desk_webhook_url: Where new tickets are announced (e.g. a WeCom group bot), if set.
        service_hours: Agents' daily hours, ``HH:MM-HH:MM``.
        service_timezone: Time zone of ``service_hours``.
        rasa_port: Port of the local Rasa server.
        model: The model file to serve (``MODEL``), if set.
        desk_agents_file: The desk's agents file (``DESK_AGENTS_FILE``; names for
            ``walletbot report``), if set.
        wechat: ``WECHAT_*`` values by their lower-case suffix (``token``, ``app_id``…),
            the fallback of ``credentials.yml``.
        desk_auto_assign: Hand queued tickets to the least-loaded available agent.
        desk_presence_seconds: How recently an agent's console must have been seen
            to count as online (auto-assignment, the agents list).
        desk_unfreeze_checks: ``(id, label)`` of the identity checks a security
            agent chooses from before lifting a freeze (none: unfreezing is off).
        desk_canned_file: The agents' canned replies (``DESK_CANNED_FILE``; relative to
            the project folder).
        desk_canned_placeholders: The facts canned replies refer to as ``{{key}}``
            (``DESK_CANNED_PLACEHOLDERS``; by default the knowledge base's).
        sla: ``DESK_SLA_*`` values by their lower-case suffix (``queue_minutes``…),
            parsed and checked by :class:`walletbot.handoff.levels.ServiceLevels`.
        log_format: ``json`` (one JSON object a line; the production default) or
            ``text`` (Rasa's own lines; the development default): ``LOG_FORMAT``.
        metrics_host: Address the Prometheus listeners bind (``METRICS_HOST``;
            127.0.0.1, never public: walletbot/ops/metrics.py says why).
        metrics_port: This Rasa server's metrics port (``METRICS_PORT``); None: off.
        action_metrics_port: The action server's (``ACTION_METRICS_PORT``); None: off.
        turn_concurrency: User turns one Rasa process runs at once; the rest wait in
            arrival order (``TURN_CONCURRENCY``; 0: no bound;
            walletbot/rasa_compat/admission.py says why).
    """

    env: str
    rasa_auth_token: str
    redis_url: Optional[str] = None
    rate_limit_per_minute: int = DEFAULT_RATE_LIMIT_PER_MINUTE
    rest_token: Optional[str] = None
    wallet_db_url: str = DEFAULT_WALLET_DB_URL
    tracker_db_url: str = "sqlite:///var/tracker.db"
    desk_webhook_url: Optional[str] = None
    service_hours: str = "00:00-24:00"
    service_timezone: str = "Asia/Shanghai"
    rasa_port: str = "5005"
    model: Optional[str] = None
    desk_agents_file: Optional[str] = None
    wechat: Mapping[str, str] = field(default_factory=dict)
    desk_auto_assign: bool = False
    desk_presence_seconds: int = DEFAULT_DESK_PRESENCE_SECONDS
    desk_unfreeze_checks: "tuple[tuple[str, str], ...]" = ()
    desk_canned_file: str = "data/desk/canned.yml"
    desk_canned_placeholders: str = "data/faq/_placeholders.yml"
    sla: Mapping[str, str] = field(default_factory=dict)
    log_format: str = "text"
    metrics_host: str = "127.0.0.1"
    metrics_port: Optional[int] = None
    action_metrics_port: Optional[int] = None
    turn_concurrency: int = DEFAULT_TURN_CONCURRENCY

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> "Settings":
        """Reads the settings; outside production, missing values fall back to config/dev.env."""
        source = _source(environ)
        wallet_url = (source.get("WALLET_DB_URL") or "").strip() or DEFAULT_WALLET_DB_URL
        if wallet_url.startswith("postgres://"):
            wallet_url = "postgresql://" + wallet_url[len("postgres://"):]
        return cls(
            env=source.get("WALLETBOT_ENV", "dev"),
            rasa_auth_token=source.get("RASA_AUTH_TOKEN", ""),
            redis_url=(source.get("REDIS_URL") or "").strip() or None,
            rate_limit_per_minute=_per_minute(source.get("RATE_LIMIT_PER_MINUTE", "")),
            rest_token=(source.get("REST_CHANNEL_TOKEN") or "").strip() or None,
            wallet_db_url=wallet_url,
            tracker_db_url=(source.get("TRACKER_DB_URL") or "").strip() or "sqlite:///var/tracker.db",
            desk_webhook_url=(source.get("DESK_WEBHOOK_URL") or "").strip() or None,
            service_hours=source.get("HANDOFF_SERVICE_HOURS") or "00:00-24:00",
            service_timezone=source.get("HANDOFF_TIMEZONE") or "Asia/Shanghai",
            rasa_port=source.get("RASA_PORT") or "5005",
            model=(source.get("MODEL") or "").strip() or None,
            desk_agents_file=(source.get("DESK_AGENTS_FILE") or "").strip() or None,
            wechat={key[len("WECHAT_"):].lower(): value for key, value in source.items()
                    if key.startswith("WECHAT_")},
            desk_auto_assign=_flag(source.get("DESK_AUTO_ASSIGN")),
            desk_presence_seconds=_presence_seconds(source.get("DESK_PRESENCE_SECONDS")),
            desk_unfreeze_checks=unfreeze_checks(source.get("DESK_UNFREEZE_VERIFICATIONS")),
            desk_canned_file=(source.get("DESK_CANNED_FILE") or "").strip()
            or "data/desk/canned.yml",
            desk_canned_placeholders=(source.get("DESK_CANNED_PLACEHOLDERS") or "").strip()
            or "data/faq/_placeholders.yml",
            sla={key[len("DESK_SLA_"):].lower(): value for key, value in source.items()
                 if key.startswith("DESK_SLA_")},
            log_format=_log_format(source),
            metrics_host=(source.get("METRICS_HOST") or "").strip() or "127.0.0.1",
            metrics_port=_port_or_off(source, "METRICS_PORT"),
            action_metrics_port=_port_or_off(source, "ACTION_METRICS_PORT"),
            turn_concurrency=_turn_concurrency(source.get("TURN_CONCURRENCY")),
        )

    @property
    def is_production(self) -> bool:
        """Whether this is the production profile."""
        return self.env == "production"


def quiet_child_env() -> Dict[str, str]:
    """This process's environment for a child process, with TensorFlow's start-up noise off."""
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def current() -> Settings:
    """The settings of this process, read now (tests change the environment).

    This reads config/dev.env outside production: fine at start-up and for a
    desk request, too dear for a per-call path (see :func:`is_production`).
    """
    return Settings.from_env()


def is_production(environ: Optional[Mapping[str, str]] = None) -> bool:
    """``current().is_production`` without reading any file.

    The action server asks for every lookup (several times a turn): reading
    config/dev.env each time was 15 % of its CPU under load (bench/RESULTS.md).
    The profile is the environment's ``WALLETBOT_ENV``; config/dev.env sets
    ``dev``, which is the default anyway, so the file cannot change the answer.
    """
    source = os.environ if environ is None else environ
    return source.get("WALLETBOT_ENV", "dev") == "production"


def placeholder_secrets(environ: Optional[Mapping[str, str]] = None) -> List[str]:
    """Names of secrets that are unset or still hold a development placeholder."""
    source = os.environ if environ is None else environ
    bad = []
    for key in _SECRET_KEYS:
        value = source.get(key, "")
        if not value or value.lower().startswith(_DEV_SECRET_PREFIXES):
            bad.append(key)
    return bad


# --- strength of the session and API keys ---------------------------------------
# Whoever knows RASA_AUTH_TOKEN reads and rewrites every conversation (the HTTP
# API); whoever knows WEB_JWT_SECRET or DESK_SECRET signs sessions as any user
# or agent. In production each must come from a random source. These rules
# cannot prove randomness: they refuse what people type or copy (placeholders,
# words, patterns, short values) and, in effect, never a generated value: of
# `secrets.token_hex(32)` / `openssl rand -hex 32` values (64 hex characters)
# fewer than one in a million is refused (a chance repeat or run of 8
# characters; none in a million draws), and scripts/prod/make_env.py then
# simply draws again.
STRONG_SECRET_KEYS = ("RASA_AUTH_TOKEN", "WEB_JWT_SECRET", "DESK_SECRET")
MIN_SECRET_CHARS = 32
# Distinct characters: a random value over letters and digits shows about 25
# of them in 32 characters (fewer than 16: 1 in 4 million); over hex digits
# (16 symbols) about 14 in 32 and 16 in 64, fewer than 9 hardly ever (1 in
# 370,000 for 32 characters, 1 in 10^15 for 64).
MIN_DISTINCT_CHARS = 16
MIN_DISTINCT_HEX_CHARS = 9
# No chunk of this many characters twice (a repeated pattern; a run such as
# "aaaaaaaaa"), no run of this many consecutive characters ("abcdefgh", "87654321").
PATTERN_CHARS = 8
GENERATE_HINT = "python -c 'import secrets; print(secrets.token_hex(32))'"
# Words of example files and of people in a hurry: anywhere, in any case. (A
# random value over letters and digits contains one of these words of six
# letters or more about once in 10^7 draws; a hex value never.)
_PLACEHOLDER_WORDS = ("changeme", "change_me", "change-me", "placeholder", "secret",
                      "password", "passwd", "example", "replace", "insecure", "default",
                      "walletbot")
_HEX = frozenset("0123456789abcdefABCDEF-")  # with a UUID's hyphens


def _dev_values() -> List[str]:
    """The values of config/dev.env: none of them may be a production secret."""
    if not DEV_ENV_FILE.exists():
        return []
    return [value for value in read_env_file(DEV_ENV_FILE).values() if value]


def secret_problem(value: str) -> Optional[str]:
    """The rule ``value`` breaks as a production secret (a phrase), or None."""
    if not value:
        return "is not set"
    lowered = value.lower()
    if lowered.startswith(("dev-", "dev_")) or value in _dev_values():
        return "holds a development value (config/dev.env, dev-…)"
    word = next((w for w in _PLACEHOLDER_WORDS if w in lowered), None)
    if word is not None:
        return f"is a placeholder, not a secret (it contains {word!r})"
    if len(value) < MIN_SECRET_CHARS:
        return f"must be at least {MIN_SECRET_CHARS} characters long (it has {len(value)})"
    seen = set()
    for start in range(len(value) - PATTERN_CHARS + 1):
        chunk = value[start:start + PATTERN_CHARS]
        if chunk in seen:
            return (f"repeats a pattern (a run of {PATTERN_CHARS} characters occurs twice): "
                    "not from a random source")
        seen.add(chunk)
    run, last_step = 1, 0
    for a, b in zip(value, value[1:]):
        step = ord(b) - ord(a)
        run = run + 1 if step in (1, -1) and step == last_step else (2 if step in (1, -1) else 1)
        last_step = step
        if run >= PATTERN_CHARS:
            return (f"contains {PATTERN_CHARS} consecutive characters in a row (like "
                    "abcdefgh or 87654321): not from a random source")
    hex_only = set(value) <= _HEX
    needed = MIN_DISTINCT_HEX_CHARS if hex_only else MIN_DISTINCT_CHARS
    distinct = len(set(value))
    if distinct < needed:
        kind = "a hex value needs" if hex_only else "needs"
        return (f"has only {distinct} distinct characters ({kind} at least {needed}): "
                "not from a random source")
    return None


def weak_secrets(environ: Optional[Mapping[str, str]] = None) -> List[str]:
    """Problems with the API and session keys (and REST_CHANNEL_TOKEN, when set), as messages.

    Each message names the variable and the rule it breaks.
    """
    source = os.environ if environ is None else environ
    problems = []
    keys = list(STRONG_SECRET_KEYS)
    if source.get("REST_CHANNEL_TOKEN", ""):
        keys.append("REST_CHANNEL_TOKEN")
    for key in keys:
        problem = secret_problem(source.get(key, ""))
        if problem is not None:
            problems.append(f"{key} {problem}; generate it with {GENERATE_HINT} (see .env.example)")
    # One leaked key must not open the other doors too.
    owners: Dict[str, List[str]] = {}
    for key in keys:
        value = source.get(key, "")
        if value:
            owners.setdefault(value, []).append(key)
    for same in owners.values():
        if len(same) > 1:
            problems.append(f"{' and '.join(same)} must differ from each other (they hold the "
                            "same value): generate each one separately")
    return problems


def rate_limit_problem(environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """Why RATE_LIMIT_PER_MINUTE is unacceptable in production, or None (unset: the default)."""
    source = os.environ if environ is None else environ
    raw = (source.get("RATE_LIMIT_PER_MINUTE") or "").strip()
    if not raw:
        return None
    try:
        per_minute = int(raw)
    except ValueError:
        return f"RATE_LIMIT_PER_MINUTE must be a whole number of messages per minute (it is {raw!r})"
    if per_minute <= 0:
        return (f"RATE_LIMIT_PER_MINUTE={raw} switches the per-conversation rate limit off: "
                f"production needs a positive limit (default {DEFAULT_RATE_LIMIT_PER_MINUTE})")
    return None


def unsafe_dev_features(environ: Optional[Mapping[str, str]] = None) -> List[str]:
    """Development conveniences that production must switch off, as messages."""
    source = os.environ if environ is None else environ
    problems = []
    if source.get("WEB_DEMO_LOGIN", "").lower() in ("1", "true", "yes"):
        problems.append("WEB_DEMO_LOGIN=true lets anyone log in as a demo user: set it to false")
    # REST_CHANNEL_TOKEN, when set, follows the rules of weak_secrets(); unset, REST is off.
    agents = source.get("DESK_AGENTS_FILE", "")
    if not agents or Path(agents).name == "agents.dev.yml":
        problems.append("DESK_AGENTS_FILE must name your own agents file, not config/agents.dev.yml")
    return problems


def check_startup(environ: Optional[Mapping[str, str]] = None) -> int:
    """Exit status for start-up: production refuses placeholder and weak secrets, and
    the built image (``WALLETBOT_IN_IMAGE``) refuses every profile but production.

    Every refusal is printed, one line each, naming the variable and the rule.
    """
    settings = Settings.from_env(environ)
    from walletbot.handoff.levels import service_level_problem

    if in_image(environ) and not settings.is_production:
        print(f"refusing to start: WALLETBOT_ENV={settings.env} inside the walletbot image "
              f"({IN_IMAGE_MARKER}=1): the image serves production only and carries no "
              "development defaults; set WALLETBOT_ENV=production (its default) and real "
              "secrets, or run the dev profile from a checkout (make run)", file=sys.stderr)
        return 1
    # Service levels are checked in every profile: a typo must not switch a timer off.
    sla = service_level_problem(settings)
    if sla:
        print(f"refusing to start: {sla}", file=sys.stderr)
        return 1
    if not settings.is_production:
        return 0
    # The API and session keys get their own messages (weak_secrets), the rest one line.
    bad = [key for key in placeholder_secrets(environ) if key not in STRONG_SECRET_KEYS]
    problems = weak_secrets(environ) + unsafe_dev_features(environ)
    rate_limit = rate_limit_problem(environ)
    if rate_limit:
        problems.append(rate_limit)
    if bad:
        problems.insert(0, "set real values for " + ", ".join(bad) + " (see .env.example)")
    for problem in problems:
        print(f"refusing to start in production: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(check_startup())
