"""The Discord front end: /anime, the "Anime-fy" message command and /stats.

Thin by design: parse the interaction, call `ConversionService`, render. Run it beside the
other front ends with `animebot serve`, or alone with `python -m bot.discord`.
"""

from bot.discord.client import AnimeClient, DiscordFrontEnd, DiscordStartError

__all__ = ["AnimeClient", "DiscordFrontEnd", "DiscordStartError"]
