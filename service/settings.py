"""Every setting of a running animebot, from environment variables and an optional TOML file.

One table (`FIELDS`) drives parsing, validation, defaults and the `animebot serve --help` text,
so documentation cannot drift from behaviour. Precedence: environment, then the file named by
ANIMEBOT_CONFIG (keys are the same names, any case), then the default. Invalid values stop the
start-up with one clear line per problem. Tokens are never printed (see `describe`).
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from storage.pg import is_url, redact


class SettingsError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))
        self.problems = problems


def _int(raw: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise ValueError(f"expected a whole number, got {raw!r}") from None


def _float(raw: str) -> float:
    try:
        return float(raw.strip())
    except ValueError:
        raise ValueError(f"expected a number, got {raw!r}") from None


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected true/false, got {raw!r}")


def _ids(raw: str) -> frozenset[str]:
    return frozenset(part.strip() for part in raw.replace(";", ",").split(",") if part.strip())


def _str(raw: str) -> str:
    return raw.strip()


def _database(raw: str) -> Path | str:
    """A SQLite file, or a PostgreSQL URL (kept as text: a Path would fold its '//')."""
    value = raw.strip()
    return value if is_url(value) else Path(value)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(raw: str) -> tuple[Network, ...]:
    """Addresses and CIDR ranges, separated by commas or spaces ("10.0.0.0/8, ::1")."""
    found: list[Network] = []
    for part in raw.replace(";", ",").replace(",", " ").split():
        try:
            found.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"not an IP address or CIDR range: {part!r}") from None
    return tuple(found)


@dataclass(frozen=True)
class Field:
    env: str
    attr: str
    parse: Callable[[str], Any]
    default: Any
    help: str
    check: Callable[[Any], str | None] = lambda _: None
    secret: bool = False
    # Personal data (people's ids): the start-up log shows how many, never which.
    private: bool = False


def _positive(v: Any) -> str | None:
    return None if v > 0 else "must be greater than 0"


def _non_negative(v: Any) -> str | None:
    return None if v >= 0 else "must be 0 or more"


def _port(v: Any) -> str | None:
    return None if 0 < v < 65536 else "must be a TCP port (1-65535)"


def _url(v: Any) -> str | None:
    return None if not v or str(v).startswith(("http://", "https://")) else "must be an http(s) URL"


def _token(v: Any) -> str | None:
    return None if not v or (":" in v and " " not in v) else "does not look like a bot token"


def _user_ids(v: Any) -> str | None:
    """Telegram and Discord user ids are whole numbers: anything else would never match anyone,
    and an admin list that silently matches no one is a mistake worth stopping for."""
    wrong = sorted(i for i in v if not (i.isascii() and i.isdigit()))
    if not wrong:
        return None
    return f"user ids are numbers, comma separated; not {', '.join(map(repr, wrong))}"


FIELDS: tuple[Field, ...] = (
    Field(
        "ANIMEBOT_DATA",
        "data_dir",
        Path,
        Path("data"),
        "folder for the database, cache and user models",
    ),
    Field(
        "ANIMEBOT_DB",
        "db_path",
        _database,
        None,
        "SQLite database file (default <data>/animebot.sqlite3), or a PostgreSQL URL "
        "postgresql://user:password@host:5432/dbname shared by several processes and machines",
    ),
    Field(
        "ANIMEBOT_HOST",
        "host",
        _str,
        "127.0.0.1",
        "web page address to bind (0.0.0.0 to expose it)",
    ),
    Field("ANIMEBOT_PORT", "port", _int, 8080, "web page port", _port),
    Field(
        "ANIMEBOT_PUBLIC_URL",
        "public_url",
        _str,
        "",
        "address people reach the web page at (links)",
        _url,
    ),
    Field(
        "ANIMEBOT_TRUSTED_PROXIES",
        "trusted_proxies",
        networks,
        (),
        "reverse proxies (addresses or CIDR ranges, comma separated) whose X-Forwarded-For "
        "names the client",
    ),
    Field(
        "ANIMEBOT_ID_KEY_FILE",
        "id_key_file",
        Path,
        None,
        "file holding the key that hashes ids, kept out of the database "
        "(default <db folder>/<db name>.key; with PostgreSQL <data>/animebot.key, the same "
        "file on every machine)",
    ),
    Field(
        "ANIMEBOT_ADMIN_TOKEN",
        "admin_token",
        _str,
        "",
        "token for the web dashboard (empty: dashboard off)",
        secret=True,
    ),
    Field(
        "ANIMEBOT_DEFAULT_STYLE",
        "default_style",
        _str,
        "",
        "style used when a person has not chosen one",
    ),
    Field(
        "ANIMEBOT_WORKERS",
        "workers",
        _int,
        os.cpu_count() or 1,
        "conversions run at once (default: CPU cores)",
        _positive,
    ),
    Field(
        "ANIMEBOT_THREADS_PER_JOB",
        "threads_per_job",
        _int,
        1,
        "ONNX Runtime threads per conversion",
        _positive,
    ),
    Field(
        "ANIMEBOT_MAX_SIDE",
        "max_side",
        _int,
        4096,
        "long side cap: larger photos are scaled down first",
        _positive,
    ),
    Field(
        "ANIMEBOT_MAX_PIXELS",
        "max_pixels",
        _int,
        40_000_000,
        "refuse images with more pixels (decompression bombs)",
        _positive,
    ),
    Field(
        "ANIMEBOT_MAX_UPLOAD_MB",
        "max_upload_mb",
        _float,
        20.0,
        "refuse uploads larger than this",
        _positive,
    ),
    Field(
        "ANIMEBOT_QUEUE_MAX",
        "queue_max",
        _int,
        100,
        "waiting conversions before new ones get 'busy'",
        _positive,
    ),
    Field(
        "ANIMEBOT_RATE_BURST",
        "rate_burst",
        _int,
        10,
        "per person: conversions allowed in a burst (0: no limit)",
        _non_negative,
    ),
    Field(
        "ANIMEBOT_RATE_PER_MINUTE",
        "rate_per_minute",
        _float,
        12.0,
        "per person: sustained conversions per minute",
        _positive,
    ),
    Field(
        "ANIMEBOT_DAILY_QUOTA",
        "daily_quota",
        _int,
        200,
        "per person: conversions per UTC day (0: no limit)",
        _non_negative,
    ),
    Field(
        "ANIMEBOT_CACHE_MB",
        "cache_mb",
        _float,
        500.0,
        "disk budget of the result/input cache",
        _positive,
    ),
    Field(
        "ANIMEBOT_RESULT_TTL_DAYS",
        "result_ttl_days",
        _float,
        30.0,
        "cached results expire after this idle time",
        _positive,
    ),
    Field(
        "ANIMEBOT_INPUT_TTL_HOURS",
        "input_ttl_hours",
        _float,
        24.0,
        "uploaded photos are deleted after this",
        _positive,
    ),
    Field(
        "ANIMEBOT_SHUTDOWN_GRACE_S",
        "shutdown_grace_s",
        _float,
        30.0,
        "on SIGTERM, the whole process waits this long for running and waiting "
        "conversions; what still waits is put off until the restart (the bots keep it)",
        _non_negative,
    ),
    Field("ANIMEBOT_LOG_LEVEL", "log_level", _str, "INFO", "DEBUG, INFO, WARNING or ERROR"),
    Field(
        "TELEGRAM_TOKEN",
        "telegram_token",
        _str,
        "",
        "BotFather token; set it to run the Telegram bot",
        _token,
        secret=True,
    ),
    Field(
        "TELEGRAM_ADMINS",
        "telegram_admins",
        _ids,
        frozenset(),
        "Telegram user ids allowed /stats (comma separated)",
        _user_ids,
        private=True,
    ),
    Field(
        "TELEGRAM_WEBHOOK_URL",
        "telegram_webhook_url",
        _str,
        "",
        "public https URL: use a webhook instead of long polling",
        _url,
    ),
    Field(
        "TELEGRAM_WEBHOOK_PORT",
        "telegram_webhook_port",
        _int,
        8443,
        "local port the webhook listens on",
        _port,
    ),
    Field(
        "TELEGRAM_API_URL",
        "telegram_api_url",
        _str,
        "",
        "Bot API base URL (a local Bot API server)",
        _url,
    ),
    Field(
        "DISCORD_TOKEN",
        "discord_token",
        _str,
        "",
        "Discord bot token; set it to run the Discord bot",
        secret=True,
    ),
    Field(
        "DISCORD_ADMINS",
        "discord_admins",
        _ids,
        frozenset(),
        "Discord user ids allowed /stats (comma separated)",
        _user_ids,
        private=True,
    ),
    Field(
        "DISCORD_GUILD_ID",
        "discord_guild_id",
        _str,
        "",
        "sync commands to this guild only (instant; for testing)",
    ),
)


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("data")
    db_path: Path | str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = ""
    trusted_proxies: tuple[Network, ...] = ()
    id_key_file: Path | None = None
    admin_token: str = ""
    default_style: str = ""
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    threads_per_job: int = 1
    max_side: int = 4096
    max_pixels: int = 40_000_000
    max_upload_mb: float = 20.0
    queue_max: int = 100
    rate_burst: int = 10
    rate_per_minute: float = 12.0
    daily_quota: int = 200
    cache_mb: float = 500.0
    result_ttl_days: float = 30.0
    input_ttl_hours: float = 24.0
    shutdown_grace_s: float = 30.0
    log_level: str = "INFO"
    telegram_token: str = field(default="", repr=False)
    telegram_admins: frozenset[str] = frozenset()
    telegram_webhook_url: str = ""
    telegram_webhook_port: int = 8443
    telegram_api_url: str = ""
    discord_token: str = field(default="", repr=False)
    discord_admins: frozenset[str] = frozenset()
    discord_guild_id: str = ""

    @property
    def database(self) -> Path | str:
        """The SQLite file, or the PostgreSQL URL (see `uses_postgres`)."""
        return self.db_path or self.data_dir / "animebot.sqlite3"

    @property
    def uses_postgres(self) -> bool:
        return is_url(self.db_path)

    @property
    def key_file(self) -> Path | None:
        """The id key file to open the database with (None: SQLite's own default, beside
        the file). A PostgreSQL database has no folder of its own, so its default is in the
        data folder."""
        if self.id_key_file is not None or not self.uses_postgres:
            return self.id_key_file
        return self.data_dir / "animebot.key"

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        file_values: dict[str, str] = {}
        problems: list[str] = []
        config = env.get("ANIMEBOT_CONFIG", "").strip()
        if config:
            try:
                raw = tomllib.loads(Path(config).read_text())
                file_values = {str(k).upper(): _as_text(v) for k, v in raw.items()}
            except (OSError, tomllib.TOMLDecodeError) as exc:
                problems.append(f"ANIMEBOT_CONFIG={config}: cannot read it ({exc})")
            unknown = sorted(set(file_values) - {f.env for f in FIELDS})
            problems += [f"{config}: unknown setting {name}" for name in unknown]
        values: dict[str, Any] = {}
        for f in FIELDS:
            raw_value = env.get(f.env, file_values.get(f.env))
            if raw_value is None or (raw_value.strip() == "" and f.default is None):
                continue
            try:
                value = f.parse(raw_value)
            except ValueError as exc:
                problems.append(f"{f.env}: {exc}")
                continue
            issue = f.check(value)
            if issue:
                shown = "(hidden)" if f.secret else repr(raw_value)
                problems.append(f"{f.env}={shown}: {issue}")
                continue
            values[f.attr] = value
        if values.get("log_level", "INFO").upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            problems.append(f"ANIMEBOT_LOG_LEVEL: unknown level {values['log_level']!r}")
        if problems:
            raise SettingsError(problems)
        return cls(**values)

    def describe(self) -> list[str]:
        """Effective settings for the start-up log; secrets shown only as set/unset."""
        lines = []
        for f in FIELDS:
            value = getattr(self, f.attr)
            if f.secret:
                value = "(set)" if value else "(unset)"
            elif is_url(value):
                value = redact(value)  # a database URL may carry a password
            elif f.private:
                value = f"({len(value)} set)" if value else "(none)"
            elif isinstance(value, frozenset):
                value = ",".join(sorted(value)) or "(none)"
            elif isinstance(value, tuple):
                value = ",".join(str(v) for v in value) or "(none)"
            lines.append(f"{f.env}={value}")
        return lines


def _as_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def help_text() -> str:
    """The settings table for `animebot serve --help`."""
    lines = ["settings (environment variables, or keys of the TOML file named by ANIMEBOT_CONFIG):"]
    for f in FIELDS:
        default = "" if f.default in (None, "", frozenset(), ()) else f" [default: {f.default}]"
        lines.append(f"  {f.env:<28} {f.help}{default}")
    return "\n".join(lines)
