"""Everything that patches or subclasses Rasa internals, in one place.

- ``perf``: speed-ups of Rasa's hot paths, patched into Rasa by ``install()``;
- ``actionrequest``: action-server calls carry the latest turns' events, not all;
- ``actionpool``: action-server calls reuse their connections (keep-alive);
- ``graphrun``: the model's graphs run in a precomputed order, not through dask;
- ``trackerstore``, ``lockstore``: stores named by ``endpoints.yml``;
- ``trackercache``: trackers kept between turns (marks the processor's turns);
- ``pststates``: dialogue states extended from the previous prediction;
- ``trackercopy``: tracker copies and applied events without a replay of every event;
- ``rulematch``: RulePolicy's rule matching, memoised on the last states;
- ``admission``: at most ``TURN_CONCURRENCY`` turns at once per process, the rest first come first served;
- ``observe``: the NLU result and the action calls, for the operations metrics and logs;
- ``socketio``: the socket.io Redis manager the web channel uses;
- ``version``: the Rasa release all of the above is written for.

``install()`` is called from one place only, the server entry point
``python -m walletbot.server`` (walletbot/server.py), after the version
check. This module imports nothing from Rasa itself: importing it (or
running ``python -m walletbot.rasa_compat.version``) stays cheap, and Rasa is
only touched once its version is known to be the right one.
"""

from __future__ import annotations


def install() -> None:
    """Patches walletbot's speed-ups into Rasa. Idempotent.

    Call it before Rasa loads a model: the garbage-collection handling wraps
    the model loader, and a load that has already happened is not revisited.
    """
    from walletbot.rasa_compat import (
        actionpool, actionrequest, admission, graphrun, observe, perf, pststates, rulematch,
        trackercache, trackercopy,
    )

    perf.install()
    actionrequest.install()
    actionpool.install()
    graphrun.install()
    trackercache.install()
    pststates.install()
    trackercopy.install()
    rulematch.install()
    observe.install()
    admission.install()
