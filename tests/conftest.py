"""Shared fixtures: dev configuration, the trained model, a loaded agent."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest
from sanic import Sanic

from walletbot.settings import PROJECT_ROOT, apply_dev_defaults

apply_dev_defaults()
# Many Sanic apps start in one test process (channels in-process, Rasa's own).
# Test mode makes Sanic apply its start-up code rewriting ("touch-up") to the
# original methods every time, instead of to already rewritten ones, which
# fails with KeyError: 'connection_task'.
Sanic.test_mode = True

MODEL_PATH = PROJECT_ROOT / "models" / "walletbot.tar.gz"
# Final, untouched test set; nlu_dev.yml is the development set used for tuning.
HELDOUT_PATH = PROJECT_ROOT / "tests" / "data" / "nlu_test.yml"
DEV_PATH = PROJECT_ROOT / "tests" / "data" / "nlu_dev.yml"
# Second final test set, written from ../shared/spec and ../shared/sources only,
# by someone who never saw the training data; never used for tuning.
BLIND_PATH = PROJECT_ROOT / "tests" / "data" / "nlu_test_blind.yml"
# Third final test set: messages as phone users type them (typos, pinyin,
# English, voice input, colloquial), each block tagged with its kind; written
# without looking at the training data, never used for tuning.
TYPING_PATH = PROJECT_ROOT / "tests" / "data" / "nlu_test_typing.yml"
# Development set in the same style, for tuning (bench/tune_linear.py).
DEV_TYPING_PATH = PROJECT_ROOT / "tests" / "data" / "nlu_dev_typing.yml"
RASA = str(PROJECT_ROOT / ".venv" / "bin" / "rasa")


def _model_is_current() -> bool:
    if not MODEL_PATH.exists():
        return False
    inputs = [PROJECT_ROOT / "config.yml", PROJECT_ROOT / "domain.yml"]
    # data/desk/ holds the desk's canned replies, not training data (as in the Makefile).
    inputs += [p for p in (PROJECT_ROOT / "data").rglob("*")
               if p.relative_to(PROJECT_ROOT / "data").parts[0] != "desk"]
    # Custom components are part of the model too (the Makefile's MODEL_INPUTS agree).
    inputs += list((PROJECT_ROOT / "walletbot" / "nlu").glob("*.py"))
    newest = max(p.stat().st_mtime for p in inputs if p.is_file())
    return MODEL_PATH.stat().st_mtime >= newest


@pytest.fixture(scope="session")
def trained_model() -> Path:
    """The bot's model, trained from the project's data if missing or stale.

    `make test` trains it first; this keeps a bare `pytest` run honest too.
    """
    if not _model_is_current():
        subprocess.run(
            [RASA, "train", "--fixed-model-name", "walletbot", "--out", "models"],
            cwd=PROJECT_ROOT,
            check=True,
        )
        MODEL_PATH.touch()
    return MODEL_PATH


@pytest.fixture(scope="session")
def agent(trained_model: Path):
    """A Rasa ``Agent`` with the trained model (NLU + policies, no action server)."""
    from rasa.core.agent import Agent

    return Agent.load(str(trained_model))


@pytest.fixture(scope="session")
def parse(agent):
    """``parse(text) -> dict``: Rasa's NLU result for one message."""

    def _parse(text: str) -> dict:
        return asyncio.run(agent.parse_message(text))

    return _parse


@pytest.fixture
def project_env() -> dict:
    """A copy of the environment with the dev defaults, for subprocesses."""
    return dict(os.environ)
