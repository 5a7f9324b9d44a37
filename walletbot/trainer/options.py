"""The options more than one ``walletbot`` subcommand takes, and how to read them.

Options only one command has are declared next to that command's handler;
the ones here are shared, so each is spelled once and every command that
takes it refers to it by name. The readers turn a group's values into the
keyword arguments of the handler functions, so that the inverted flags
(``--no-progress``, ``--keep-seen``) are interpreted in one place.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict

from walletbot.trainer import layout
from walletbot.trainer.command import Group, Option
from walletbot.trainer.compare import DEFAULT_INTENT_TOLERANCE, DEFAULT_TOLERANCE

if TYPE_CHECKING:  # pragma: no cover
    from walletbot.trainer.kb_edit import Paths

DEFAULT_TIMEOUT = 300.0

# --- project files ------------------------------------------------------------

CONFIG = Option("--config", type=Path, default=layout.CONFIG, help="Rasa config")
DATA = Option("--data", type=Path, default=layout.DATA, help="Rasa data folder")
KB = Option("--kb", type=Path, default=layout.KB, help="FAQ knowledge base folder")
NLU = Option("--nlu", type=Path, default=layout.NLU, help="NLU data folder")
FAQ_NLU = Option("--faq-nlu", type=Path, default=layout.FAQ_NLU,
                 help="NLU file generated from the knowledge base")
CONVERSATION = Option("--conversation", type=Path, default=layout.CONVERSATION_NLU,
                      help="NLU file for new conversation-intent examples")
DOMAIN = Option("--domain", type=Path, default=layout.DOMAIN, help="Rasa domain")
DATA_PATHS = Group("data files", (KB, NLU, FAQ_NLU, CONVERSATION, DOMAIN))

NO_BUILD = Option("--no-build", action="store_true", help="do not rebuild data/nlu/faq.yml")
OUT = Option("--out", type=Path)
REPORTS = Option("--reports", type=Path, default=layout.REPORTS, help="reports folder")
NO_PROGRESS = Option("--no-progress", action="store_true", help="no progress bars")
FORMAT = Option("--format")

# --- the tracker store (review, report) -----------------------------------------

TRACKER_URL = Option("--db-url",
                     help="SQLAlchemy URL of the tracker store (default: $TRACKER_DB_URL)")
DAYS = Option("--days", type=float, help="only the last N days")

# --- models -------------------------------------------------------------------

MODELS_DIR = Option("--models-dir", type=Path, default=layout.MODELS,
                    help="folder of trained models")
SERVED = Option("--served", type=Path,
                help="the served model (default: $MODEL or <models-dir>/walletbot.tar.gz)")

TEST = Option("--test", type=Path, default=layout.TEST_SET, help="held-out test set")
TRAIN_DATA = Option("--train-data", type=Path, default=layout.NLU,
                    help="training data: test lines identical to a training line are not scored")
KEEP_SEEN = Option("--keep-seen", action="store_true",
                   help="score test lines that also occur in the training data")
TEST_SET = Group("test set", (TEST, TRAIN_DATA, KEEP_SEEN, NO_PROGRESS))

TOLERANCE = Option("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                   help="largest allowed drop of accuracy, macro-F1, accuracy after fallback")
INTENT_TOLERANCE = Option("--intent-tolerance", type=float, default=DEFAULT_INTENT_TOLERANCE,
                          help="largest allowed drop of any intent's F1")
TOLERANCES = Group(None, (TOLERANCE, INTENT_TOLERANCE))

RELOAD = Option("--reload", action="store_true",
                help="tell the running Rasa server to load the model (PUT /model)")
URL = Option("--url", help="Rasa server URL (default: http://127.0.0.1:$RASA_PORT)")
TOKEN = Option("--token", help="Rasa API token (default: $RASA_AUTH_TOKEN)")
TIMEOUT = Option("--timeout", type=float, default=DEFAULT_TIMEOUT,
                 help="seconds to wait for the load")
SERVER = Group("running server", (RELOAD, URL, TOKEN, TIMEOUT))

# --- readers ------------------------------------------------------------------


def paths(args: argparse.Namespace) -> "Paths":
    """The files of :data:`DATA_PATHS` as one value, the way the knowledge-base editor takes them."""
    from walletbot.trainer.kb_edit import Paths

    return Paths(
        kb_dir=args.kb, nlu_dir=args.nlu, faq_nlu=args.faq_nlu,
        conversation_nlu=args.conversation, domain=args.domain,
    )


def build(args: argparse.Namespace) -> bool:
    """The handlers take ``build``; the flag is negative because building is the default."""
    return not args.no_build


def progress(args: argparse.Namespace) -> bool:
    """The handlers take ``progress``; the flag is negative because bars are the default."""
    return not args.no_progress


def test_set(args: argparse.Namespace) -> Dict[str, Any]:
    """``test``, ``train_data`` and ``progress``: :data:`KEEP_SEEN` means no training data
    to filter the test set with, which is how the scoring functions are told."""
    return {
        "test": args.test,
        "train_data": None if args.keep_seen else args.train_data,
        "progress": progress(args),
    }


def tolerances(args: argparse.Namespace) -> Dict[str, Any]:
    """The keyword arguments of :data:`TOLERANCES`, named as the handlers take them."""
    return {"tolerance": args.tolerance, "intent_tolerance": args.intent_tolerance}


def server(args: argparse.Namespace) -> Dict[str, Any]:
    """The keyword arguments of :data:`SERVER`, named as the handlers take them."""
    return {"reload": args.reload, "url": args.url, "token": args.token,
            "timeout": args.timeout}
