from __future__ import annotations

import stat
from pathlib import Path

import pytest

from mornet.config import ConfigurationError, Environment, Settings, load_runtime_secrets


def test_embedded_mode_generates_secrets_once_and_keeps_them_private(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = load_runtime_secrets(settings)
    second = load_runtime_secrets(settings)
    assert first.jwt_secret == second.jwt_secret
    assert len(first.jwt_secret) >= 48
    mode = stat.S_IMODE((tmp_path / "secrets.json").stat().st_mode)
    assert mode == 0o600


def test_a_configured_secret_wins_over_the_generated_one(tmp_path: Path) -> None:
    configured = "k" * 40
    assert (
        load_runtime_secrets(Settings(data_dir=tmp_path, jwt_secret=configured)).jwt_secret
        == configured
    )


@pytest.mark.parametrize("secret", [None, "", "changeme", "CHANGE-ME", "short-secret"])
def test_production_refuses_missing_placeholder_or_short_secrets(
    tmp_path: Path, secret: str | None
) -> None:
    settings = Settings(data_dir=tmp_path, env=Environment.PRODUCTION, jwt_secret=secret)
    with pytest.raises(ConfigurationError, match="MORNET_JWT_SECRET"):
        load_runtime_secrets(settings)
    assert not (tmp_path / "secrets.json").exists()


def test_production_accepts_a_real_secret(tmp_path: Path) -> None:
    secret = "a-real-production-signing-key-of-44-chars!!"
    settings = Settings(data_dir=tmp_path, env=Environment.PRODUCTION, jwt_secret=secret)
    assert load_runtime_secrets(settings).jwt_secret == secret


def test_default_database_is_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    url = Settings(data_dir=tmp_path).resolved_database_url()
    assert url == f"sqlite:///{tmp_path.resolve() / 'mornet.db'}"
    assert (
        Settings(data_dir=tmp_path, database_url="postgresql://h/db").resolved_database_url()
        == "postgresql://h/db"
    )
