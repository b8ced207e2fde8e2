"""Small helpers the handlers share."""

from __future__ import annotations

from telegram import InlineKeyboardMarkup, Message, User
from telegram.constants import ChatType

from bot.telegram.delivery import Target, Undeliverable
from bot.telegram.deps import Context, Deps


def command_target(message: Message, user: User) -> Target:
    """Answers quote the message in groups (so it is clear whom they answer), not in a
    private chat."""
    quote = message.chat.type != ChatType.PRIVATE
    return Target(message.chat_id, user.id, reply_to=message.message_id if quote else None)


async def answer(
    d: Deps,
    context: Context,
    target: Target,
    text: str,
    markup: InlineKeyboardMarkup | None = None,
) -> Message | None:
    """Send a text answer; None when the chat refuses messages (recorded by Delivery)."""
    try:
        return await d.delivery.text(context.bot, target, text, markup)
    except Undeliverable:
        return None
