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
from urllib.parse import urlsplit, urlunsplit


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
    # A URL that may hold a password: the start-up log shows it with the password hidden.
    credentials: bool = False


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


POSTGRES_SCHEMES = ("postgresql://", "postgres://")
QUEUE_SCHEMES = ("redis://", "rediss://", "unix://")


def _db_url(v: Any) -> str | None:
    """A path, or a database URL of a kind storage knows (a typo'd scheme is no file name)."""
    text = str(v)
    if "://" not in text or text.startswith(POSTGRES_SCHEMES):
        return None
    return "must be a SQLite file path or a postgresql:// URL"


def _queue_url(v: Any) -> str | None:
    text = str(v)
    return None if not text or text.startswith(QUEUE_SCHEMES) else "must be a redis:// URL"


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
        "ANIMEBOT_MODELS_DIR",
        "models_dir",
        Path,
        None,
        "folder of user models imported with 'animebot models add' (default <data>/models)",
    ),
    Field(
        "ANIMEBOT_DB",
        "db_url",
        _str,
        "",
        "database: a SQLite file (default <data>/animebot.sqlite3) or a postgresql:// URL",
        _db_url,
        credentials=True,
    ),
    Field(
        "ANIMEBOT_QUEUE",
        "queue_url",
        _str,
        "",
        "job queue between front ends and workers: a redis:// URL (unset: in this process)",
        _queue_url,
        credentials=True,
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
        "ANIMEBOT_CLIP_MAX_SECONDS",
        "clip_max_seconds",
        _float,
        15.0,
        "clips and GIFs: longer ones are converted up to this many seconds (with a note)",
        _positive,
    ),
    Field(
        "ANIMEBOT_CLIP_MAX_FRAMES",
        "clip_max_frames",
        _int,
        450,
        "clips and GIFs: frames converted at most (cuts the length further)",
        _positive,
    ),
    Field(
        "ANIMEBOT_CLIP_MAX_SIDE",
        "clip_max_side",
        _int,
        720,
        "clips and GIFs: long side cap; larger frames are scaled down (with a note)",
        _positive,
    ),
    Field(
        "ANIMEBOT_CLIP_MAX_FPS",
        "clip_max_fps",
        _float,
        30.0,
        "clips and GIFs: higher frame rates drop frames evenly",
        _positive,
    ),
    Field(
        "ANIMEBOT_CLIP_MAX_MB",
        "clip_max_mb",
        _float,
        20.0,
        "clips and GIFs: refuse uploads larger than this",
        _positive,
    ),
    Field(
        "ANIMEBOT_CLIP_PHOTO_PIXELS",
        "clip_photo_pixels",
        _int,
        1_250_000,
        "clips and GIFs: frames x pixels that count as one photo (quota, fair queue)",
        _positive,
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
    Field(
        "DISCORD_SHARDED",
        "discord_sharded",
        _bool,
        False,
        "run the Discord bot as an AutoShardedClient (for bots in many servers)",
    ),
    Field(
        "ANIMEBOT_QUEUE_JOB_TIMEOUT_S",
        "queue_job_timeout_s",
        _float,
        60.0,
        "with ANIMEBOT_QUEUE: a job running longer is given up; a killed worker's job is "
        "taken over by another worker this long + 10 s after it started",
        _positive,
    ),
    Field(
        "ANIMEBOT_QUEUE_CLIP_TIMEOUT_S",
        "queue_clip_timeout_s",
        _float,
        900.0,
        "with ANIMEBOT_QUEUE: a clip's job running longer is given up (a killed worker's "
        "clip is taken over as soon as a photo's)",
        _positive,
    ),
)


@dataclass(frozen=True)
class Paths:
    """Folders: data (database, cache) and the user models looked up next to the built-in ones."""

    data_dir: Path
    models_dir: Path
    id_key_file: Path | None = None

    @property
    def downloads_dir(self) -> Path:
        return self.data_dir / "downloads"


@dataclass(frozen=True)
class EngineSettings:
    workers: int
    threads_per_job: int
    max_side: int
    max_pixels: int
    max_upload_bytes: int
    default_style: str
    # Clips and animated GIFs (ANIMEBOT_CLIP_*): what the engine decodes and stylizes of one.
    clip_max_seconds: float = 15.0
    clip_max_frames: int = 450
    clip_max_side: int = 720
    clip_max_fps: float = 30.0
    clip_max_bytes: int = 20 * 1024 * 1024


@dataclass(frozen=True)
class WebSettings:
    host: str
    port: int
    public_url: str
    trusted_proxies: tuple[Network, ...]
    admin_token: str = field(repr=False)


@dataclass(frozen=True)
class Limits:
    """What one person, and the process, may ask for."""

    queue_max: int
    rate_burst: int
    rate_per_minute: float
    daily_quota: int
    max_upload_bytes: int
    shutdown_grace_s: float
    # Clips: uploads refused above this (ANIMEBOT_CLIP_MAX_MB), and frames x pixels that count
    # as one photo against the quota and in the fair queue (ANIMEBOT_CLIP_PHOTO_PIXELS).
    clip_max_bytes: int = 20 * 1024 * 1024
    clip_photo_pixels: int = 1_250_000


@dataclass(frozen=True)
class QueueSettings:
    """ANIMEBOT_QUEUE: where jobs go between front ends and workers."""

    url: str = field(default="", repr=False)
    job_timeout_s: float = 60.0

    @property
    def in_process(self) -> bool:
        """Unset: today's fair queue inside this one process (`make run`)."""
        return not self.url


@dataclass(frozen=True)
class DatabaseSettings:
    """ANIMEBOT_DB: a SQLite file (the embedded default) or a PostgreSQL URL."""

    url: str = field(repr=False)
    sqlite_path: Path | None  # the SQLite file; None for a database server
    cache_budget_bytes: int
    result_ttl_s: float
    input_ttl_s: float
    key_file: Path | None  # None: SQLite's own default, beside the file

    @property
    def is_sqlite(self) -> bool:
        return not self.url.startswith(POSTGRES_SCHEMES)

    @property
    def target(self) -> Path | str:
        """What `storage.Database.open` takes: the SQLite file, or the server's URL (kept as
        text: a Path would fold its '//')."""
        return self.sqlite_path if self.sqlite_path is not None else self.url


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("data")
    models_dir: Path | None = None
    db_url: str = field(default="", repr=False)  # may carry a password
    queue_url: str = field(default="", repr=False)
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
    clip_max_seconds: float = 15.0
    clip_max_frames: int = 450
    clip_max_side: int = 720
    clip_max_fps: float = 30.0
    clip_max_mb: float = 20.0
    clip_photo_pixels: int = 1_250_000
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
    discord_sharded: bool = False
    queue_job_timeout_s: float = 60.0
    queue_clip_timeout_s: float = 900.0

    @property
    def database(self) -> Path:
        """The SQLite file (also where the id key and the cache sit by default)."""
        return self.db.sqlite_path or self.data_dir / "animebot.sqlite3"

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    # -- the typed parts handed down to the layers that need them ------------------------------

    @property
    def paths(self) -> Paths:
        return Paths(
            data_dir=self.data_dir,
            models_dir=self.models_dir or self.data_dir / "models",
            id_key_file=self.id_key_file,
        )

    @property
    def engine(self) -> EngineSettings:
        return EngineSettings(
            workers=self.workers,
            threads_per_job=self.threads_per_job,
            max_side=self.max_side,
            max_pixels=self.max_pixels,
            max_upload_bytes=self.max_upload_bytes,
            default_style=self.default_style,
            clip_max_seconds=self.clip_max_seconds,
            clip_max_frames=self.clip_max_frames,
            clip_max_side=self.clip_max_side,
            clip_max_fps=self.clip_max_fps,
            clip_max_bytes=self.clip_max_bytes,
        )

    @property
    def web(self) -> WebSettings:
        return WebSettings(
            host=self.host,
            port=self.port,
            public_url=self.public_url,
            trusted_proxies=self.trusted_proxies,
            admin_token=self.admin_token,
        )

    @property
    def limits(self) -> Limits:
        return Limits(
            queue_max=self.queue_max,
            rate_burst=self.rate_burst,
            rate_per_minute=self.rate_per_minute,
            daily_quota=self.daily_quota,
            max_upload_bytes=self.max_upload_bytes,
            shutdown_grace_s=self.shutdown_grace_s,
            clip_max_bytes=self.clip_max_bytes,
            clip_photo_pixels=self.clip_photo_pixels,
        )

    @property
    def queue(self) -> QueueSettings:
        return QueueSettings(url=self.queue_url, job_timeout_s=self.queue_job_timeout_s)

    @property
    def db(self) -> DatabaseSettings:
        """Where storage lives (ANIMEBOT_DB) and the cache's budget."""
        url = self.db_url
        is_server = url.startswith(POSTGRES_SCHEMES)
        key_file = self.id_key_file
        if key_file is None and is_server:
            # A server has no folder of its own: the same file on every machine, by default
            # in the data folder (SQLite's default sits beside its file).
            key_file = self.data_dir / "animebot.key"
        return DatabaseSettings(
            url=url,
            sqlite_path=None if is_server else Path(url or self.data_dir / "animebot.sqlite3"),
            cache_budget_bytes=int(self.cache_mb * 1024 * 1024),
            result_ttl_s=self.result_ttl_days * 86400,
            input_ttl_s=self.input_ttl_hours * 3600,
            key_file=key_file,
        )

    @property
    def clip_max_bytes(self) -> int:
        return int(self.clip_max_mb * 1024 * 1024)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        values, problems = _read(environ, FIELDS)
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
            elif f.credentials:
                value = redact_url(value) or "(unset)"
            elif f.private:
                value = f"({len(value)} set)" if value else "(none)"
            elif isinstance(value, frozenset):
                value = ",".join(sorted(value)) or "(none)"
            elif isinstance(value, tuple):
                value = ",".join(str(v) for v in value) or "(none)"
            lines.append(f"{f.env}={value}")
        return lines


def _read(
    environ: Mapping[str, str] | None, fields: tuple[Field, ...]
) -> tuple[dict[str, Any], list[str]]:
    """The values of `fields` (environment first, then the ANIMEBOT_CONFIG file), and every
    problem found. The one place of the project that reads the environment for settings."""
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
    for f in fields:
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
            shown = (
                "(hidden)"
                if f.secret
                else repr(redact_url(raw_value) if f.credentials else raw_value)
            )
            problems.append(f"{f.env}={shown}: {issue}")
            continue
        values[f.attr] = value
    return values, problems


_PATH_FIELDS = frozenset({"ANIMEBOT_DATA", "ANIMEBOT_MODELS_DIR", "ANIMEBOT_ID_KEY_FILE"})


def load_paths(environ: Mapping[str, str] | None = None) -> Paths:
    """Only the folders (environment, then the ANIMEBOT_CONFIG file): for commands that need
    the user models but none of the serving settings (`animebot convert`, `styles`, `models`),
    so a half-configured bot token does not stop them."""
    values, problems = _read(environ, tuple(f for f in FIELDS if f.env in _PATH_FIELDS))
    if problems:
        raise SettingsError(problems)
    return Settings(**values).paths


def redact_url(url: str) -> str:
    """`scheme://user:password@host/...` with the password replaced, for logs and errors."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


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
