"""Rasa's command line with walletbot's patches of Rasa: the one way to start Rasa.

    python -m walletbot.server run --model models/walletbot.tar.gz ...   # the Rasa server
    python -m walletbot.server run actions --actions actions ...         # the action server

The arguments are Rasa's own (``rasa --help``). Before Rasa's CLI sees them:

1. the installed Rasa and Rasa SDK must be the pinned release
   (walletbot/rasa_compat/version.py); otherwise this prints the installed and
   required versions and the fix, and exits with status 3 without importing
   Rasa;
2. ``walletbot.rasa_compat.install()`` patches the speed-ups into Rasa
   (walletbot/rasa_compat/perf.py), before any model is loaded;
3. ``walletbot.ops.observe.start()`` sets up the process's logs
   (``LOG_FORMAT``) and starts its metrics listener (README, "Metrics").

Every launcher (scripts/run.sh, scripts/prod.sh, the Docker image, the
tests' and benchmarks' servers) goes through here instead of ``rasa``, so the
patches no longer depend on which channels a server happens to configure.

Why a module of its own rather than ``python -m walletbot.rasa_compat``: the
command names what it starts (the walletbot server), and the quarantine
package stays a library of patches with no side effects on import; all this
module does is order the steps.

The action server (``run actions``) gets the version check and step 3 only
(its part of step 3 touches Rasa SDK, not Rasa): the speed-ups are for the
Rasa server's turns, and installing them imports
Rasa's core (TensorFlow included): measured, the action server answered
/health after 19-22 s instead of 5.5-6 s, with 540 MB resident instead of
120 MB.
"""

from __future__ import annotations

import sys
from typing import Optional, Sequence


def is_action_server(args: Sequence[str]) -> bool:
    # The spelling every launcher uses; an unusual one (options before
    # `actions`) only costs the action server start-up time.
    return list(args[:2]) == ["run", "actions"]


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Checks the Rasa version, installs the patches, then runs Rasa's CLI with ``argv``."""
    args = list(sys.argv[1:] if argv is None else argv)

    from walletbot.rasa_compat import version

    version.check_or_exit("walletbot.server")

    action_server = is_action_server(args)
    if not action_server:
        from walletbot import rasa_compat

        rasa_compat.install()

    from walletbot.ops import observe

    observe.start(action_server=action_server)

    import rasa.__main__

    # Rasa's main() parses sys.argv itself (and rewrites it: a trailing model
    # path); argv[0] stays ours, so anything re-executing the process comes
    # back through this entry point.
    sys.argv = [sys.argv[0], *args]
    rasa.__main__.main()


if __name__ == "__main__":
    main()
