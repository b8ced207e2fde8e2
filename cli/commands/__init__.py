"""One module per subcommand group; each exposes `register(subparsers)` and sets `handler`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from cli.commands import convert, models, purge, serve, stats, styles, worker

if TYPE_CHECKING:
    from cli.common import Subparsers


class Command(Protocol):
    def register(self, subparsers: Subparsers) -> None: ...


COMMANDS: tuple[Command, ...] = (convert, styles, models, serve, worker, stats, purge)
