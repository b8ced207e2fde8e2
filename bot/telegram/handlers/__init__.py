"""Which handler answers which update (PTB tries them in order; the first match wins)."""

from __future__ import annotations

from typing import Any

from telegram.ext import Application, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot.telegram import clips
from bot.telegram.callbacks import RESULT_PATTERN, SETTING_PATTERN
from bot.telegram.handlers import buttons, commands, photos

PRIVATE = filters.ChatType.PRIVATE
NEW_MESSAGE = filters.UpdateType.MESSAGE
MEDIA = filters.PHOTO | filters.Document.ALL | filters.Sticker.ALL
# In groups only pictures meant for the bot: "/anime" or a mention in the caption (or a reply
# "/anime" to a picture, handled as a command). In a private chat, every picture. This is a
# cheap pre-filter; photos.on_media checks that the mention or command names this bot.
ADDRESSED = PRIVATE | filters.CaptionRegex(r"(?i)^/anime|@\w")

COMMANDS = {
    "start": commands.start,
    "help": commands.help_command,
    "style": commands.style,
    "faces": commands.faces,
    "language": commands.language,
    "privacy": commands.privacy,
    "forget": commands.forget,
    "stats": commands.stats,
    "anime": photos.on_anime,
}


def register(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    for name, callback in COMMANDS.items():
        app.add_handler(CommandHandler(name, callback, filters=NEW_MESSAGE))
    # before photos: an animation also carries a document
    app.add_handler(MessageHandler(NEW_MESSAGE & clips.CLIPS & ADDRESSED, photos.on_clip))
    app.add_handler(MessageHandler(NEW_MESSAGE & MEDIA & ADDRESSED, photos.on_media))
    app.add_handler(MessageHandler(NEW_MESSAGE & PRIVATE & filters.COMMAND, commands.unknown))
    app.add_handler(MessageHandler(NEW_MESSAGE & PRIVATE & ~MEDIA, photos.on_other))
    app.add_handler(CallbackQueryHandler(buttons.on_result_button, pattern=RESULT_PATTERN))
    app.add_handler(CallbackQueryHandler(buttons.on_setting_button, pattern=SETTING_PATTERN))
    app.add_handler(CallbackQueryHandler(buttons.on_stale_button))
