"""The ``kakehashi`` command line: one subcommand per module in this package.

Each subcommand module has ``add_arguments(parser)`` and ``run(args) -> int``.  Only
:func:`main` returns an exit code (0 ok, 1 failure, 2 usage or configuration error); nothing
in the library calls ``sys.exit``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from types import ModuleType

from kakehashi import __version__
from kakehashi.cli import get, send, serve, ws
from kakehashi.cli.flags import HelpFormatter, Parser

__all__ = ["main"]

COMMANDS: dict[str, ModuleType] = {"serve": serve, "get": get, "send": send, "ws": ws}


def build_parser() -> argparse.ArgumentParser:
    return _build()[0]


def _build() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The parser, and each command's own (which reports that command's usage errors)."""
    parser: argparse.ArgumentParser = Parser(
        prog="kakehashi", description="A fast, strict, pure-Python HTTP/1.1 server and client."
    )
    parser.add_argument("--version", action="version", version=f"kakehashi {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands: dict[str, argparse.ArgumentParser] = {}
    for name, module in COMMANDS.items():
        doc = (module.__doc__ or name).strip().splitlines()[0]
        command = sub.add_parser(name, help=doc, description=doc, formatter_class=HelpFormatter)
        module.add_arguments(command)
        commands[name] = command
    return parser, commands


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser, commands = _build()
    args, extra = parser.parse_known_args(argv)
    if extra:  # said by the command, whose --help lists what it takes
        commands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    result: int = COMMANDS[args.command].run(args)
    return result
