"""Album sizes for the style previews: Telegram takes 2 to 10 photos per album."""

from __future__ import annotations

import pytest

from bot.telegram.previews import ALBUM_MAX, album_sizes


@pytest.mark.parametrize("count", range(0, 35))
def test_album_sizes_cover_every_preview_within_telegrams_limits(count: int) -> None:
    sizes = album_sizes(count)
    if count < 2:
        assert sizes == []
        return
    assert sum(sizes) == count
    assert all(2 <= n <= ALBUM_MAX for n in sizes)
    assert max(sizes) - min(sizes) <= 1
