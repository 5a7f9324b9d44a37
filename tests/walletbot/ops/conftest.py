"""The trained model for the tests of real turns (metrics, JSON logs).

Loaded as it is: tests/conftest.py's ``agent`` first retrains a model it finds
older than the data, which these tests have no reason to wait for.
"""

from __future__ import annotations

import pytest

from tests.conftest import MODEL_PATH
from tests.system import missing


@pytest.fixture(scope="session")
def real_agent():
    """A Rasa ``Agent`` on models/walletbot.tar.gz (in-memory stores, no action server)."""
    if not MODEL_PATH.exists():
        missing(f"no model at {MODEL_PATH}: run `make train`")
    from rasa.core.agent import Agent

    return Agent.load(str(MODEL_PATH))
