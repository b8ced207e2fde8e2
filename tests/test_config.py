"""The one configuration module: every setting from the environment or the TOML file reaches
the part of the program that uses it, and nothing else reads the environment for settings."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cli.main import main
from service.runtime import Runtime
from service.settings import Settings, SettingsError, load_paths
from tests.fixtures_models import ModelDir, model_dir  # noqa: F401  (pytest fixture)


def _install_user_style(model_dir: ModelDir, data: Path) -> None:  # noqa: F811
    shutil.copytree(model_dir.path / model_dir.scene, data / "models" / model_dir.scene)
    shutil.copytree(model_dir.path / model_dir.face, data / "models" / model_dir.face)


async def test_toml_only_data_folder_finds_user_models(
    model_dir: ModelDir,  # noqa: F811
    tmp_path: Path,
) -> None:
    """ANIMEBOT_DATA set only in the ANIMEBOT_CONFIG file: the database AND the user models
    are in that folder (user models used to be looked up in ./data/models)."""
    data = tmp_path / "configured"
    _install_user_style(model_dir, data)
    config = tmp_path / "animebot.toml"
    config.write_text(f'animebot_data = "{data}"\nanimebot_workers = 1\n')
    settings = Settings.from_env({"ANIMEBOT_CONFIG": str(config)})
    runtime = await Runtime.start(settings, warm=False)
    try:
        assert model_dir.scene in runtime.service.styles()
        assert runtime.settings.database.parent == data
        assert (data / "animebot.sqlite3").is_file()
    finally:
        await runtime.stop()


def test_toml_only_data_folder_reaches_the_cli(
    model_dir: ModelDir,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = tmp_path / "configured"
    _install_user_style(model_dir, data)
    config = tmp_path / "animebot.toml"
    config.write_text(f'ANIMEBOT_DATA = "{data}"\n')
    for name in ("ANIMEBOT_DATA", "ANIMEBOT_MODELS_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ANIMEBOT_CONFIG", str(config))
    assert main(["styles", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert model_dir.scene in {row["name"] for row in rows}


def test_models_dir_setting_wins_over_the_data_folder(tmp_path: Path) -> None:
    paths = load_paths({"ANIMEBOT_DATA": str(tmp_path), "ANIMEBOT_MODELS_DIR": "/srv/models"})
    assert paths.models_dir == Path("/srv/models")
    assert load_paths({"ANIMEBOT_DATA": str(tmp_path)}).models_dir == tmp_path / "models"


def test_paths_ignore_unrelated_bad_settings(tmp_path: Path) -> None:
    """`animebot styles` must not fail because a bot token is malformed."""
    env = {"ANIMEBOT_DATA": str(tmp_path), "TELEGRAM_TOKEN": "not a token"}
    assert load_paths(env).data_dir == tmp_path
    with pytest.raises(SettingsError):
        Settings.from_env(env)


def test_queue_and_database_urls_are_typed_and_redacted(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "ANIMEBOT_DATA": str(tmp_path),
            "ANIMEBOT_DB": "postgresql://bot:s3cret@db.local/animebot",
            "ANIMEBOT_QUEUE": "redis://:hunter22@redis.local:6379/0",
        }
    )
    assert not settings.db.is_sqlite and settings.db.sqlite_path is None
    assert settings.db.url == "postgresql://bot:s3cret@db.local/animebot"
    assert settings.queue.url.startswith("redis://") and not settings.queue.in_process
    shown = "\n".join(settings.describe())
    assert "s3cret" not in shown and "hunter22" not in shown
    assert "ANIMEBOT_DB=postgresql://bot:***@db.local/animebot" in shown
    assert "s3cret" not in repr(settings) and "hunter22" not in repr(settings)


def test_unset_queue_and_database_mean_one_process_with_sqlite(tmp_path: Path) -> None:
    settings = Settings.from_env({"ANIMEBOT_DATA": str(tmp_path)})
    assert settings.queue.in_process
    assert settings.db.is_sqlite and settings.database == tmp_path / "animebot.sqlite3"
    custom = Settings.from_env({"ANIMEBOT_DATA": str(tmp_path), "ANIMEBOT_DB": "/x/y.db"})
    assert custom.database == Path("/x/y.db")


@pytest.mark.parametrize(
    ("name", "value"),
    [("ANIMEBOT_DB", "mysql://u:pw@h/db"), ("ANIMEBOT_QUEUE", "amqp://u:pw@h/")],
)
def test_unknown_url_kinds_are_refused_without_the_password(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({name: value})
    assert name in str(caught.value) and "pw" not in str(caught.value)
