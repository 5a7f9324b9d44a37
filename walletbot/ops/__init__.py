"""Operator tools: backing up and restoring the bot's two databases
(``python -m walletbot.ops.backup --help`` lists the commands), and the
servers' Prometheus metrics and JSON logs (``metrics``, ``logs``, started by
``observe``). Nothing here runs at import time.
"""
