from __future__ import annotations

import base64
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


REAL_MASTER_KEY = base64.b64encode(bytes(range(32))).decode()
REAL_OPERATOR_KEY = "0x" + "ab" * 32


def test_production_accepts_real_secrets(tmp_path: Path) -> None:
    secret = "a-real-production-signing-key-of-44-chars!!"
    settings = Settings(
        data_dir=tmp_path,
        env=Environment.PRODUCTION,
        jwt_secret=secret,
        wallet_master_key=REAL_MASTER_KEY,
        chain_operator_key=REAL_OPERATOR_KEY,
        cookie_secure=True,
    )
    resolved = load_runtime_secrets(settings)
    assert resolved.jwt_secret == secret
    assert resolved.wallet_master_key == REAL_MASTER_KEY
    assert resolved.chain_operator_key == REAL_OPERATOR_KEY


@pytest.mark.parametrize(
    ("master_key", "operator_key", "variable"),
    [
        (None, REAL_OPERATOR_KEY, "MORNET_WALLET_MASTER_KEY"),
        (
            base64.b64encode(b"too short").decode() + "x" * 30,
            REAL_OPERATOR_KEY,
            "MORNET_WALLET_MASTER_KEY",
        ),
        (REAL_MASTER_KEY, None, "MORNET_CHAIN_OPERATOR_KEY"),
        (REAL_MASTER_KEY, "0x" + "zz" * 32, "MORNET_CHAIN_OPERATOR_KEY"),
    ],
)
def test_production_refuses_missing_or_malformed_wallet_and_chain_keys(
    tmp_path: Path, master_key: str | None, operator_key: str | None, variable: str
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        env=Environment.PRODUCTION,
        jwt_secret="a-real-production-signing-key-of-44-chars!!",
        wallet_master_key=master_key,
        chain_operator_key=operator_key,
    )
    with pytest.raises(ConfigurationError, match=variable):
        load_runtime_secrets(settings)


def test_embedded_wallet_and_operator_keys_are_well_formed(tmp_path: Path) -> None:
    resolved = load_runtime_secrets(Settings(data_dir=tmp_path))
    assert len(base64.b64decode(resolved.wallet_master_key)) == 32
    assert len(bytes.fromhex(resolved.chain_operator_key.removeprefix("0x"))) == 32


def test_default_database_is_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    url = Settings(data_dir=tmp_path).resolved_database_url()
    assert url == f"sqlite:///{tmp_path.resolve() / 'mornet.db'}"
    assert (
        Settings(data_dir=tmp_path, database_url="postgresql://h/db").resolved_database_url()
        == "postgresql://h/db"
    )


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, "mqtt://127.0.0.1:1884"),
        ({"mqtt_port": 2883}, "mqtt://127.0.0.1:2883"),
        ({"mqtt_host": "0.0.0.0", "mqtt_port": 2883}, "mqtt://127.0.0.1:2883"),  # noqa: S104
        ({"mqtt_host": "10.0.0.5"}, "mqtt://10.0.0.5:1884"),
        ({"mqtt_url": "mqtt://gw:pw@broker.example:1883"}, "mqtt://broker.example:1883"),
        ({"mqtt_port": 2883, "public_mqtt_url": "mqtts://mqtt.example"}, "mqtts://mqtt.example"),
    ],
)
def test_the_agents_broker_address_follows_the_broker_in_use(
    tmp_path: Path, overrides: dict[str, object], expected: str
) -> None:
    settings = Settings.model_validate({"data_dir": tmp_path, **overrides})
    assert settings.resolved_public_mqtt_url() == expected


@pytest.mark.parametrize(
    ("secure", "override", "starts"),
    [(False, False, False), (True, False, True), (False, True, True)],
)
def test_production_refuses_an_insecure_session_cookie_unless_overridden(
    tmp_path: Path, secure: bool, override: bool, starts: bool
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        env=Environment.PRODUCTION,
        jwt_secret="a-real-production-signing-key-of-44-chars!!",
        wallet_master_key=REAL_MASTER_KEY,
        chain_operator_key=REAL_OPERATOR_KEY,
        cookie_secure=secure,
        allow_insecure_cookie=override,
    )
    if starts:
        load_runtime_secrets(settings)
    else:
        with pytest.raises(ConfigurationError, match="MORNET_COOKIE_SECURE"):
            load_runtime_secrets(settings)
