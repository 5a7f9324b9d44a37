"""Telling a running Rasa server to load a model (``PUT /model``)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Mapping, Optional, Tuple

DEFAULT_TIMEOUT = 300.0


class ServerError(RuntimeError):
    """The server did not load the model; the message says why."""


def server_defaults(environ: Optional[Mapping[str, str]] = None) -> Tuple[str, str]:
    """``(url, token)`` of the local Rasa server from ``RASA_PORT`` / ``RASA_AUTH_TOKEN``.

    Unset variables fall back to ``config/dev.env``, like everywhere else.
    """
    from walletbot.settings import Settings

    config = Settings.from_env(environ)
    return f"http://127.0.0.1:{config.rasa_port}", config.rasa_auth_token


def load_model(
    *, model: Path, url: str, token: str, timeout: float = DEFAULT_TIMEOUT
) -> None:
    """Asks the server at ``url`` to replace its model with ``model``.

    Rasa loads the file from its own disk, so ``model`` is sent as an absolute
    path. The call returns when the server has loaded it.

    Raises:
        ServerError: unreachable, token refused, or the model failed to load.
    """
    query = urllib.parse.urlencode({"token": token}) if token else ""
    request = urllib.request.Request(
        f"{url.rstrip('/')}/model" + (f"?{query}" if query else ""),
        data=json.dumps({"model_file": str(model.resolve())}).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        method="PUT",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if response.status >= 300:  # pragma: no cover - urllib raises first
                raise ServerError(f"{url} answered {response.status}")
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            raise ServerError(
                f"{url} refused the token ({exc.code}): set RASA_AUTH_TOKEN to the "
                "server's --auth-token"
            ) from exc
        detail = exc.read().decode("utf-8", "replace")[:300]
        raise ServerError(f"{url} could not load the model ({exc.code}): {detail}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ServerError(
            f"no Rasa server answered at {url} ({reason}); is `make run` running? "
            "The model is promoted on disk and is served at the next start."
        ) from exc
