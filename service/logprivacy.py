"""No log line of this process carries a token, a person's id or name, whatever the level.

Two layers:

- `cap_third_party_loggers`: the bot libraries log whole API payloads (updates with user ids
  and first names, Discord gateway events with interaction tokens) at DEBUG, and httpx logs
  every request URL (with the Telegram token in it) at INFO. Those loggers stay at INFO
  (httpx, httpcore: WARNING) even at ANIMEBOT_LOG_LEVEL=DEBUG, which only opens up our own.
- `install`: a log-record factory that scrubs every record of every logger (message,
  arguments, traceback and stack text) before any handler or formatter sees it: registered
  secrets (`protect`), values of personal fields (`'first_name': 'Ann'`, `"username":"ann"`,
  `first_name='Ann'`), numeric ids (`'id': 7382194561`, `chat_id=-100123456`, Discord's
  `"id": "1100000000000000004"`), `token` fields, and the interaction or webhook token in
  Discord URLs (`/interactions/<id>/<token>/callback`, `/webhooks/<app>/<token>`).

Records of third-party loggers are rendered when they are made, since libraries may fill in
the objects they logged later (PTB adds file URLs with the token to logged results).
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

REDACTED = "[redacted]"
ID_REDACTED = "[id]"

# Their INFO lines are request URLs (the Telegram token is part of every Bot API URL).
_QUIET = ("httpx", "httpcore")
# Their DEBUG lines are raw API payloads (ids, names, interaction tokens).
_PAYLOAD_LOGGERS = (
    "telegram",
    "discord",
    "aiohttp",
    "websockets",
    "tornado",
    "hpack",
)
# Only talkative below WARNING, and only about themselves.
_CHATTY = ("PIL", "matplotlib")
_OUR_LOGGERS = ("animebot", "__main__", "root")

_NAME_FIELDS = (
    "first_name",
    "last_name",
    "username",
    "global_name",
    "display_name",
    "nick",
    "full_name",
    "title",
    "phone_number",
    "email",
    "token",
    "interaction_token",
)
_QUOTED = r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*\""""
# `'first_name': 'Ann'`, `"username":"ann"`, `first_name='Ann'`
_NAME_VALUE = re.compile(
    r"""(?P<key>['"]?\b(?:""" + "|".join(_NAME_FIELDS) + r""")['"]?\s*[:=]\s*)"""
    r"(?P<value>" + _QUOTED + ")"
)
# `'id': 7382194561`, `chat_id=-1001234567890`, `"user_id": "1100000000000000004"`
_ID_VALUE = re.compile(
    r"""(?P<key>['"]?\b[A-Za-z_]*id['"]?\s*[:=]\s*)(?P<quote>['"]?)-?\d{4,}(?P=quote)"""
)
# Discord: the token in interaction callback and webhook (follow-up) URLs.
_DISCORD_URL_TOKEN = re.compile(r"(/(?:interactions|webhooks)/\d+/)[A-Za-z0-9._~%-]{16,}")
# Mentions in text (`<@1100000000000000004>`) and plain snowflakes after "user"/"member".
_MENTION = re.compile(r"<@[!&]?\d{4,}>")

_lock = threading.Lock()
_secrets: set[str] = set()
_installed = False
_previous_factory = logging.getLogRecordFactory()


def protect(*secrets: str) -> None:
    """Redact these exact strings (tokens, their URL-safe parts) from every record from now
    on; also installs the scrubber."""
    with _lock:
        _secrets.update(s for s in secrets if s and len(s) >= 6)
    install()


def scrub(text: str) -> str:
    """`text` without registered secrets, personal field values, ids or Discord tokens."""
    for secret in sorted(_secrets, key=len, reverse=True):  # a whole token before its part
        if secret in text:
            text = text.replace(secret, REDACTED)
    text = _NAME_VALUE.sub(_redact_quoted, text)
    text = _ID_VALUE.sub(_redact_id, text)
    text = _DISCORD_URL_TOKEN.sub(r"\1" + REDACTED, text)
    return _MENTION.sub("<@" + ID_REDACTED + ">", text)


def _redact_quoted(match: re.Match[str]) -> str:
    quote = match.group("value")[0]
    return f"{match.group('key')}{quote}{REDACTED}{quote}"


def _redact_id(match: re.Match[str]) -> str:
    quote = match.group("quote")
    return f"{match.group('key')}{quote}{ID_REDACTED}{quote}"


def _third_party(name: str) -> bool:
    return not name.startswith(_OUR_LOGGERS)


def _factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _previous_factory(*args, **kwargs)
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: leave it to the handler to report
        return record
    clean = scrub(message)
    if clean != message or (record.args and _third_party(record.name)):
        record.msg, record.args = clean, None
    if record.exc_info and record.exc_info[1] is not None:
        text = logging.Formatter().formatException(record.exc_info)
        clean = scrub(text)
        if clean != text:
            record.exc_text = clean
    if record.stack_info:
        record.stack_info = scrub(record.stack_info)
    return record


def install() -> None:
    """Scrub every log record of this process from now on (idempotent)."""
    global _installed, _previous_factory
    with _lock:
        if _installed:
            return
        _previous_factory = logging.getLogRecordFactory()
        logging.setLogRecordFactory(_factory)
        _installed = True


def cap_third_party_loggers(level: str = "INFO") -> None:
    """Keep library loggers out of DEBUG (payloads) and httpx out of INFO (URLs).

    Set on the loggers themselves, so a later basicConfig(DEBUG) on the root does not turn
    them back on. At WARNING and above every logger already stays quiet enough."""
    wanted = logging.getLevelName(level.upper())
    wanted = wanted if isinstance(wanted, int) else logging.INFO
    floors = {name: logging.WARNING for name in _QUIET}
    floors.update({name: logging.INFO for name in _PAYLOAD_LOGGERS})
    if wanted > logging.DEBUG:  # libraries only speak up for problems
        floor = max(logging.WARNING, wanted)
        floors = {name: floor for name in (*_QUIET, *_PAYLOAD_LOGGERS, *_CHATTY)}
    for name, floor in floors.items():
        logger = logging.getLogger(name)
        if logger.level < floor:  # NOTSET included
            logger.setLevel(floor)


def quiet_http_clients() -> None:
    """httpx and httpcore at WARNING at least: their INFO lines are request URLs."""
    for name in _QUIET:
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:  # NOTSET included
            logger.setLevel(logging.WARNING)
