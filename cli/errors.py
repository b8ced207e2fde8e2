"""Typed failures of the command line itself; each carries the exit code it ends with."""

from __future__ import annotations

from core.errors import AnimeBotError


class CliError(AnimeBotError):
    """A refusal the user can act on (bad arguments, a file we will not trust): exit 2."""

    code = "cli"
    exit_code = 2


class ChecksumMismatch(CliError):
    """A downloaded or given file is not the one its SHA-1 says it should be."""

    code = "checksum"


class DownloadError(CliError):
    """The network failed; the partial file stays, so running the command again resumes."""

    code = "download"
    exit_code = 1


class MissingExtra(CliError):
    """An optional dependency (torch for `models add`) is not installed."""

    code = "missing_extra"
