"""``walletbot``: the trainers' command line.

Run ``walletbot --help`` for the subcommands. Each subcommand, with its
options, is declared beside its handler in ``walletbot.trainer.cmd_*``; this
module only assembles them into one parser and dispatches.
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional, Tuple

from walletbot.trainer import cmd_data, cmd_model, cmd_report
from walletbot.trainer.command import Command, add_commands

COMMANDS: Tuple[Command, ...] = (*cmd_data.COMMANDS, *cmd_model.COMMANDS, *cmd_report.COMMANDS)

_EPILOG = """\
everyday loop:
  walletbot faq add --intent faq/withdraw_fee --question "提现要手续费吗"
  walletbot validate
  walletbot train
  walletbot evaluate
  walletbot promote --reload
  walletbot review          # then label the file and: walletbot review import FILE
  walletbot report --days 7 # the desk dashboard's figures (--format csv for a spreadsheet)
"""


class _Formatter(argparse.HelpFormatter):
    """Wraps one-line descriptions, keeps multi-line epilogs, shows useful defaults."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default not in (None, False, argparse.SUPPRESS) and "default" not in text:
            text += " (default: %(default)s)"
        return text


def make_parser() -> argparse.ArgumentParser:
    """The argument parser, exposed for tests."""
    parser = argparse.ArgumentParser(
        prog="walletbot",
        description="Trainer tools for walletbot (OK钱包客服机器人). Run from the project root.",
        epilog=_EPILOG,
        formatter_class=_Formatter,
    )
    add_commands(parser, COMMANDS, dest="command", required=True, formatter=_Formatter)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``walletbot`` console script."""
    args = make_parser().parse_args(argv)
    from walletbot.trainer.console import quiet_libraries

    quiet_libraries()
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
