"""Fixtures of the attack tests.

pytest gives a test the fixtures of the conftest.py files on its own path
only: tests/walletbot/conftest.py is not one of them for tests/security/, so
the throwaway Redis server is imported from there (the same session fixture).
"""

from tests.walletbot.conftest import redis_server_binary, redis_url  # noqa: F401  (fixtures)
