"""Declarations of the ``walletbot`` subcommands and their options.

An option is declared once, as an :class:`Option`, and every command that
takes it refers to that object; a renamed flag or a changed default then
changes in one place. Each handler module declares its commands next to the
functions that do the work, and ``walletbot.cli`` only assembles them.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional, Sequence, Tuple, Type, Union

Handler = Callable[[argparse.Namespace], int]


class Option:
    """One command-line argument: the ``add_argument`` call, kept as data.

    ``str(option)`` is its long flag, for messages that tell the user what
    to pass, so that they follow a rename.
    """

    def __init__(self, *flags: str, **settings: Any) -> None:
        self.flags: Tuple[str, ...] = flags
        self.settings = settings

    def but(self, **changes: Any) -> "Option":
        """The same flag with another help text or default, for a command that
        uses it a little differently (``--config`` of ``evaluate``)."""
        return Option(*self.flags, **{**self.settings, **changes})

    @property
    def name(self) -> str:
        return self.flags[-1]

    def add_to(self, parser: Any) -> None:
        parser.add_argument(*self.flags, **self.settings)

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"Option({self.name!r})"


@dataclass(frozen=True)
class Group:
    """Options several commands take together; ``title`` heads them in the help."""

    title: Optional[str]
    options: Tuple[Option, ...]

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        target = parser.add_argument_group(self.title) if self.title else parser
        for option in self.options:
            option.add_to(target)


Argument = Union[Option, Group]


@dataclass(frozen=True)
class Command:
    """A subcommand: its help, its arguments and the function that runs it.

    A command without ``run`` only groups its ``subcommands`` (``faq``), so
    one of them must be given; with ``run`` they are optional (``review``).
    """

    name: str
    help: str
    arguments: Tuple[Argument, ...] = ()
    run: Optional[Handler] = None
    description: Optional[str] = None
    epilog: Optional[str] = None
    subcommands: Tuple["Command", ...] = ()

    def add_to(
        self,
        commands: "argparse._SubParsersAction",
        *,
        formatter: Type[argparse.HelpFormatter],
    ) -> argparse.ArgumentParser:
        parser = commands.add_parser(
            self.name, help=self.help, description=self.description, epilog=self.epilog,
            formatter_class=formatter,
        )
        for argument in self.arguments:
            argument.add_to(parser)
        if self.run is not None:
            parser.set_defaults(handler=self.run)
        if self.subcommands:
            add_commands(parser, self.subcommands, dest=f"{self.name}_command",
                         required=self.run is None, formatter=formatter)
        return parser


def add_commands(
    parser: argparse.ArgumentParser,
    commands: Sequence[Command],
    *,
    dest: str,
    required: bool,
    formatter: Type[argparse.HelpFormatter],
) -> None:
    """Adds ``commands`` as the subcommands of ``parser``."""
    subparsers = parser.add_subparsers(dest=dest, required=required)
    for command in commands:
        command.add_to(subparsers, formatter=formatter)


def walk(
    commands: Sequence[Command], *, prefix: Tuple[str, ...] = ()
) -> Iterator[Tuple[Tuple[str, ...], Command]]:
    """Every command and nested subcommand with its words (``("review", "import")``)."""
    for command in commands:
        words = (*prefix, command.name)
        yield words, command
        yield from walk(command.subcommands, prefix=words)


def options_of(command: Command) -> Iterator[Option]:
    """The options ``command`` itself declares, groups opened."""
    for argument in command.arguments:
        if isinstance(argument, Group):
            yield from argument.options
        else:
            yield argument
