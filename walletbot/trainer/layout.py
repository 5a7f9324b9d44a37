"""Where the project's files are, relative to a project root.

Every trainer command takes these paths as options; the defaults are the
project's own layout, so commands run from the repository root need none.
"""

from __future__ import annotations

from pathlib import Path

CONFIG = Path("config.yml")
DOMAIN = Path("domain.yml")
DATA = Path("data")
KB = Path("data/faq")
FAQ_NLU = Path("data/nlu/faq.yml")
NLU = Path("data/nlu")
CONVERSATION_NLU = Path("data/nlu/conversation.yml")
MODELS = Path("models")
REPORTS = Path("reports")
TEST_SET = Path("tests/data/nlu_test.yml")
SERVED_MODEL_NAME = "walletbot.tar.gz"
HISTORY = "history"


def served_model(models_dir: Path) -> Path:
    """The model ``make run`` serves: ``$MODEL`` if set, else ``<models>/walletbot.tar.gz``."""
    from walletbot import settings

    configured = settings.current().model
    if configured and models_dir == MODELS:
        return Path(configured)
    return models_dir / SERVED_MODEL_NAME

