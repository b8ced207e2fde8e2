"""The Telegram bot: people send a photo and get it back in anime style.

`TelegramFrontEnd(runtime)` runs it inside `animebot serve`; `python -m bot.telegram` runs the
bot alone. The project README ("Telegram bot") explains setting one up.
"""

from bot.telegram.app import TelegramFrontEnd, build_application
from bot.telegram.deps import FrontEndOptions

__all__ = ["FrontEndOptions", "TelegramFrontEnd", "build_application"]
