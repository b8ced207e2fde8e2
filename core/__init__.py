"""Image I/O, the shared CPU inference engine and face2paint. Knows nothing of bots or storage."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.api import convert as convert
else:

    def convert(
        image: Any, style: str | None = None, *, faces: bool = True, side_by_side: bool = False
    ) -> Any:
        """`core.api.convert`, imported on first call so `import core.errors` stays cheap."""
        from core.api import convert as _convert

        return _convert(image, style, faces=faces, side_by_side=side_by_side)


__all__ = ["convert"]
