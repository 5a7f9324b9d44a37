"""``walletbot``: the trainers' command line.

Run ``walletbot --help`` for the subcommands.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

from walletbot.faq.build import build, is_up_to_date
from walletbot.faq.kb import KnowledgeBaseError

DEFAULT_KB = Path("data/faq")
DEFAULT_FAQ_NLU = Path("data/nlu/faq.yml")


def _faq_build(args: argparse.Namespace) -> int:
    try:
        if args.check:
            if is_up_to_date(kb_dir=args.kb, out_path=args.out):
                print(f"{args.out} is up to date.")
                return 0
            print(
                f"{args.out} is out of date with {args.kb}/: run `walletbot faq build`.",
                file=sys.stderr,
            )
            return 1
        changed = build(kb_dir=args.kb, out_path=args.out)
    except KnowledgeBaseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{'wrote' if changed else 'unchanged'}: {args.out}")
    return 0


def make_parser() -> argparse.ArgumentParser:
    """The argument parser, exposed for tests."""
    parser = argparse.ArgumentParser(
        prog="walletbot",
        description="Trainer tools for walletbot (OK钱包客服机器人).",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    faq = commands.add_parser("faq", help="FAQ knowledge base (data/faq/)")
    faq_commands = faq.add_subparsers(dest="faq_command", required=True)
    faq_build = faq_commands.add_parser(
        "build", help="generate faq/<name> NLU data and utter_faq/<name> responses"
    )
    faq_build.add_argument("--kb", type=Path, default=DEFAULT_KB, help="knowledge base folder")
    faq_build.add_argument("--out", type=Path, default=DEFAULT_FAQ_NLU, help="generated file")
    faq_build.add_argument(
        "--check", action="store_true", help="exit 1 if the generated file is out of date"
    )
    faq_build.set_defaults(handler=_faq_build)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``walletbot`` console script."""
    args = make_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
