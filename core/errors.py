"""Typed failures. Front ends map `code` to a translated message (i18n key `error.<code>`);
the exception text itself is for logs and never reaches a user."""

from __future__ import annotations


class AnimeBotError(Exception):
    code = "internal"


class InputError(AnimeBotError):
    """Something is wrong with the file a person sent."""

    code = "bad_input"


class EmptyInput(InputError):
    code = "empty"


class NotAnImage(InputError):
    code = "not_image"


class DamagedImage(InputError):
    """Truncated or corrupt: decoding started but could not finish."""

    code = "damaged"


class UnsupportedImage(InputError):
    code = "unsupported"


class ImageTooLarge(InputError):
    """Over the byte or pixel cap (decompression bombs land here before any pixel is decoded)."""

    code = "too_large"

    def __init__(self, message: str, *, pixels: int = 0, limit: int = 0) -> None:
        super().__init__(message)
        self.pixels, self.limit = pixels, limit


class ImageTooSmall(InputError):
    code = "too_small"

    def __init__(self, message: str, *, min_side: int = 0) -> None:
        super().__init__(message)
        self.min_side = min_side


class NotAVideo(InputError):
    """Sent as a clip, but neither a video nor an animation this build can read."""

    code = "not_video"


class DamagedVideo(InputError):
    """A video's header, but no frame (or no header) could be read."""

    code = "damaged_video"


class UnknownStyle(AnimeBotError):
    code = "unknown_style"

    def __init__(self, style: str, available: list[str]) -> None:
        listed = f"available: {', '.join(available)}" if available else "none is installed"
        super().__init__(f"unknown style {style!r}; {listed}")
        self.style, self.available = style, available


class ModelFileError(AnimeBotError):
    """A model file is missing, corrupt, or does not match what it claims to be."""

    code = "model_file"
