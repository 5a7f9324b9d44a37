"""Logs and metrics of a server process, set up by the entry point before Rasa's CLI runs.

Called from walletbot/server.py for both kinds of server:

- ``LOG_FORMAT=json``: JSON log lines (walletbot/ops/logs.py);
- the action server: the log context and error count of each action call
  (walletbot/rasa_compat/observe.py; the Rasa server's counterpart comes with
  ``walletbot.rasa_compat.install()``);
- the Rasa server: the queue gauges, read from the wallet DB when scraped;
- the metrics listener on ``METRICS_HOST`` and this process's port
  (``METRICS_PORT``, the action server ``ACTION_METRICS_PORT``; unset: none).
"""

from __future__ import annotations

from typing import Optional

import prometheus_client

from walletbot import settings as settings_module
from walletbot.ops import logs, metrics
from walletbot.settings import Settings


def start(*, action_server: bool, config: Optional[Settings] = None) -> Optional[object]:
    """Sets up this process's logs and metrics; returns the metrics listener, if one runs."""
    config = config or settings_module.current()
    # A `_created` timestamp series beside every counter doubles what is scraped for nothing.
    prometheus_client.disable_created_metrics()
    if config.log_format == "json":
        logs.use_json(action_server=action_server)
    metrics.initialise(action_server=action_server)
    if action_server:
        from walletbot.rasa_compat import observe

        observe.install_sdk()
        port = config.action_metrics_port
    else:
        metrics.watch_queue(_read_queue)
        port = config.metrics_port
    return metrics.serve(config.metrics_host, port) if port else None


def _read_queue() -> metrics.QueueFigures:
    from walletbot.store.queue_stats import queue_figures
    from walletbot.store.service import default_service

    # The process-wide wallet service: the desk's and the handoff check's engine.
    return default_service().run_blocking(queue_figures)
