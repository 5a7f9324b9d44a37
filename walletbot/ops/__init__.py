"""Operator tools: backing up and restoring the bot's two databases.

``python -m walletbot.ops.backup --help`` lists the commands. Nothing here
runs at import time.
"""
