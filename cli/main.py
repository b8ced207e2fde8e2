"""`animebot` entry point: builds the parser from `cli.commands` and turns failures into one
clear line and an exit code (0 ok, 1 some work failed, 2 refused / usage, 130 interrupted).

Importing this module is cheap: command modules import the engine (onnxruntime) only when they
run, and torch only inside `models add` / `models pull`.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from cli.commands import COMMANDS
from cli.common import error_text, exit_code
from core.errors import AnimeBotError

PROG = "animebot"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Turn photos into anime-style pictures, on the CPU, offline.",
        epilog="Run 'animebot COMMAND --help' for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {_version()}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show tracebacks when something fails"
    )
    parser.add_argument(
        "--models-dir",
        type=Path,
        action="append",
        metavar="DIR",
        help="look for styles only in DIR (repeatable; default: the built-in styles and the "
        "user models directory, $ANIMEBOT_MODELS_DIR)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("animebot")
    except PackageNotFoundError:
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    verbose: bool = args.verbose
    try:
        result: int = args.handler(args)
        return result
    except AnimeBotError as exc:
        _report(exc, verbose)
        return exit_code(exc)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `animebot styles | head`: the reader left; not our failure
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as exc:  # a bug or an unexpected environment: one line unless --verbose
        _report(exc, verbose)
        return 1


def _report(exc: BaseException, verbose: bool) -> None:
    if verbose:
        traceback.print_exception(exc, file=sys.stderr)
    print(f"{PROG}: {error_text(exc)}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
