"""Helpers shared by the subcommands: which styles to use, and how failures read."""

from __future__ import annotations

import argparse
import errno
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from cli.errors import CliError
from core.errors import AnimeBotError, InputError, ModelFileError, UnknownStyle
from core.registry import Registry

if TYPE_CHECKING:
    from service.settings import Paths

    Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]


def registry_from(args: argparse.Namespace) -> Registry:
    """`--models-dir` (repeatable) replaces the default search path: built-in + user models."""
    dirs: list[Path] | None = getattr(args, "models_dir", None)
    return Registry(dirs) if dirs else Registry.default(user_models_dir())


def user_models_dir() -> Path:
    """The configured user models folder (ANIMEBOT_MODELS_DIR, else <ANIMEBOT_DATA>/models,
    from the environment or the ANIMEBOT_CONFIG file)."""
    return _paths().models_dir


def data_dir() -> Path:
    return _paths().data_dir


def _paths() -> Paths:
    from service.settings import SettingsError, load_paths

    try:
        return load_paths()
    except SettingsError as exc:
        raise CliError(one_line(str(exc))) from None


def exit_code(exc: AnimeBotError) -> int:
    """2 for refusals and setup problems the user must fix first, 1 for failed work."""
    code = getattr(exc, "exit_code", None)
    if isinstance(code, int):
        return code
    return 2 if isinstance(exc, UnknownStyle | ModelFileError) else 1


def one_line(text: str) -> str:
    return " ".join(text.split())


def error_text(exc: BaseException) -> str:
    """What the user reads: never a raw exception text from a library.

    Input problems go through the i18n catalogue (the same sentences the bots send); our own
    typed errors (model files, refusals) carry messages we wrote, with the paths an operator
    needs; OS errors are named by their errno.
    """
    if isinstance(exc, InputError):
        import i18n

        return i18n.error_message(exc, "en")
    if isinstance(exc, AnimeBotError):
        return one_line(str(exc)) or exc.code
    if isinstance(exc, OSError):
        return os_error_text(exc)
    from storage.errors import StorageError  # here: storage is not needed for --help

    if isinstance(exc, StorageError):  # a database or id key file it must not touch: says why
        return one_line(str(exc))
    return f"unexpected {type(exc).__name__}; run with --verbose for the traceback"


_OS_ERRORS = {
    errno.ENOENT: "file not found",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EISDIR: "is a directory",
    errno.ENOTDIR: "a parent of the path is not a directory",
    errno.ENOSPC: "no space left on the device",
    errno.EROFS: "read-only file system",
    errno.ENAMETOOLONG: "file name too long",
}


def os_error_text(exc: OSError) -> str:
    reason = _OS_ERRORS.get(exc.errno or -1, "input/output error")
    return f"{reason}: {exc.filename}" if exc.filename else reason


def note_text(note: str) -> str | None:
    """A short English remark for a conversion note, or None when it is not worth showing."""
    import i18n

    return i18n.note_message(note, "en")


def write_atomic(path: Path, data: bytes) -> None:
    """Write next to the target and rename, so an interrupted run never leaves half a file.

    The file gets the mode any new file gets (0666 less the umask: 0644 under umask 022), not
    the 0600 of a temporary file: results are the user's pictures, not secrets."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.part"
        try:
            fd = os.open(tmp, flags, 0o666)  # the kernel applies the umask
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def kib(size: int) -> str:
    return f"{size / 1024:,.0f} KB"


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value
