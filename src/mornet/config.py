"""One settings object for every role, read from `MORNET_*` environment variables.

An engine left unset means its embedded default (SQLite in the data directory, …). Secrets
have no default in production: the embedded mode generates its own once and keeps them in the
data directory, production refuses to start without real ones.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# Values that people paste from examples; a production secret must never be one of them.
PLACEHOLDER_SECRETS = frozenset(
    {"", "changeme", "change-me", "change_me", "secret", "placeholder", "xxx", "todo"}
)
MIN_SECRET_LENGTH = 32


class Environment(StrEnum):
    EMBEDDED = "embedded"
    PRODUCTION = "production"


class ConfigurationError(RuntimeError):
    """The configuration cannot run: the message says which variable and why."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MORNET_", extra="ignore")

    env: Environment = Environment.EMBEDDED
    data_dir: Path = Path("./var")
    database_url: str | None = None
    """Unset: SQLite at `<data_dir>/mornet.db`."""
    jwt_secret: str | None = None
    """HS256 signing key for access tokens. Unset in embedded mode: generated in the data dir."""
    access_token_ttl_minutes: int = Field(default=12 * 60, ge=1)
    public_mqtt_url: str | None = None
    """The broker address written into an edge agent's configuration. Unset: the embedded
    broker's host and port, or MORNET_MQTT_URL without its credentials."""
    cookie_secure: bool = False
    """Mark the session cookie `Secure` (set it behind HTTPS). Production requires it."""
    allow_insecure_cookie: bool = False
    """Production only: accept MORNET_COOKIE_SECURE=false (a deliberate override, e.g. a
    private network without TLS)."""
    wallet_master_key: str | None = None
    """Base64 of 32 bytes: AES-256-GCM key that encrypts custodial wallet keys at rest."""
    chain_rpc_url: str | None = None
    """Any EVM JSON-RPC. Unset: a local anvil node, its state kept in the data dir."""
    chain_operator_key: str | None = None
    """Hex private key that deploys the contracts and signs every platform transaction."""
    chain_confirmations: int = Field(default=0, ge=0)
    """Blocks on top of a transaction's block before it counts as confirmed."""
    anvil_port: int = 8545
    """Port of the local anvil node in embedded mode."""
    mqtt_url: str | None = None
    """The broker the gateway subscribes to (Mosquitto, EMQX): mqtt:// or mqtts:// (TLS).
    Unset: an embedded broker."""
    mqtt_ca_file: Path | None = None
    """With an mqtts:// broker: the CA of its certificate (default: the system's CAs)."""
    mqtt_host: str = "127.0.0.1"
    """Interface of the embedded broker."""
    mqtt_port: int = 1884
    """Port of the embedded broker (1883 is usually a real broker's)."""
    mqtt_shared_group: str = "mornet-gateway"
    """Gateway instances on an external broker split the stream through $share/<group>/."""
    mqtt_client_id: str = "mornet-gateway-1"
    """Persistent session name of this gateway instance: keep it stable across restarts."""
    amqp_url: str | None = None
    """RabbitMQ for the message bus. Unset: an in-process bus."""
    readings_queue: str = "telemetry.readings.store"
    """The durable queue the readings consumers share."""
    readings_keep_days: int = Field(default=400, ge=0)
    """Raw readings older than this are deleted (their hourly use stays) and a reading that
    old is refused; 0 keeps every reading forever."""
    bus_retry_attempts: int = Field(default=5, ge=1, le=100)
    """A bus batch failing this often (not an outage) is split until the failing message is
    found; that one goes to the dead letters with the reason."""
    login_failure_limit: int = Field(default=10, ge=1)
    """Failed logins per email, and per client address, within the throttle window."""
    registration_limit: int = Field(default=10, ge=1)
    """Registrations per client address within the throttle window."""
    throttle_window_minutes: float = Field(default=15, gt=0)
    public_url: str = "http://127.0.0.1:8000"
    """Where the platform is reached from outside: the bank's notifications and the pages it
    sends a payer back to are under it."""
    bank_url: str | None = None
    """T-Bank's acquiring API (https://securepay.tinkoff.ru). Unset: the sandbox bank inside
    the platform, which speaks the same protocol."""
    bank_terminal_key: str | None = None
    """The terminal's key from the bank's merchant account (unset: the sandbox's)."""
    bank_password: str | None = None
    """The terminal's password: it signs every request and notification (unset: the sandbox's,
    derived from the platform's secrets)."""
    bank_reconcile_minutes: float = Field(default=10, gt=0)
    """A deposit without an outcome for this long is asked about (GetState)."""
    bank_deposit_min: Decimal = Field(default=Decimal(10), gt=0)
    bank_deposit_max: Decimal = Field(default=Decimal(600_000), gt=0)
    """Bounds of one deposit, in RUB."""
    bank_withdrawal_min: Decimal = Field(default=Decimal(10), gt=0)
    bank_withdrawal_max: Decimal = Field(default=Decimal(600_000), gt=0)
    """Bounds of one withdrawal, in RUB."""
    bank_payout_seconds: float = Field(default=30, gt=0)
    """How often payouts still running are asked about (a held withdrawal starts at once)."""
    settlement_period: Literal["day", "hour"] = "day"
    """Households are settled per day of their region's time zone (`hour` for demos)."""
    settlement_grace_minutes: float = Field(default=15, ge=0)
    """A period is settled this long after it ends, so late readings still count."""
    treasury_address: str | None = None
    """Where settlement's GCC goes (unset: an address derived from a hash, until a treasury
    exists)."""
    anvil_bin: str | None = None
    """Path to the anvil binary; default: the one the setup installed under .tools/."""

    def resolved_public_mqtt_url(self) -> str:
        if self.public_mqtt_url:
            return self.public_mqtt_url
        if self.mqtt_url:
            parts = urlsplit(self.mqtt_url)
            netloc = parts.hostname or "127.0.0.1"
            if ":" in netloc:
                netloc = f"[{netloc}]"
            if parts.port:
                netloc += f":{parts.port}"
            return urlunsplit((parts.scheme, netloc, "", "", ""))
        # An agent cannot dial the wildcard address; the loopback is right on this host, and
        # an operator whose agents live elsewhere sets MORNET_PUBLIC_MQTT_URL.
        host = "127.0.0.1" if self.mqtt_host in ("0.0.0.0", "") else self.mqtt_host  # noqa: S104
        host = "[::1]" if host == "::" else (f"[{host}]" if ":" in host else host)
        return f"mqtt://{host}:{self.mqtt_port}"

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'mornet.db').resolve()}"


class RuntimeSecrets(BaseModel):
    """Secrets the running platform needs, resolved from settings or the data directory."""

    jwt_secret: str
    wallet_master_key: str
    chain_operator_key: str


def _generate(name: str) -> str:
    if name == "wallet_master_key":
        return base64.b64encode(secrets.token_bytes(32)).decode()
    if name == "chain_operator_key":
        return "0x" + secrets.token_hex(32)
    return secrets.token_urlsafe(48)


def _check_master_key(value: str) -> str:
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError as exc:
        raise ConfigurationError("MORNET_WALLET_MASTER_KEY must be base64") from exc
    if len(raw) != 32:
        raise ConfigurationError("MORNET_WALLET_MASTER_KEY must be base64 of exactly 32 bytes")
    return value


def _check_operator_key(value: str) -> str:
    hex_part = value.removeprefix("0x")
    if len(hex_part) != 64 or any(c not in "0123456789abcdefABCDEF" for c in hex_part):
        raise ConfigurationError("MORNET_CHAIN_OPERATOR_KEY must be a 32-byte hex private key")
    return value


def _check_production_secret(name: str, value: str | None) -> str:
    if value is None or value.strip().lower() in PLACEHOLDER_SECRETS:
        raise ConfigurationError(
            f"MORNET_{name.upper()} must be set to a real secret in production "
            f"(at least {MIN_SECRET_LENGTH} characters, not a placeholder)"
        )
    if len(value) < MIN_SECRET_LENGTH:
        raise ConfigurationError(
            f"MORNET_{name.upper()} is too short: at least {MIN_SECRET_LENGTH} characters"
        )
    return value


def load_runtime_secrets(settings: Settings) -> RuntimeSecrets:
    """Resolve every secret, generating and persisting the embedded ones on first use."""
    if settings.env is Environment.PRODUCTION:
        production = RuntimeSecrets(
            jwt_secret=_check_production_secret("jwt_secret", settings.jwt_secret),
            wallet_master_key=_check_master_key(
                _check_production_secret("wallet_master_key", settings.wallet_master_key)
            ),
            chain_operator_key=_check_operator_key(
                _check_production_secret("chain_operator_key", settings.chain_operator_key)
            ),
        )
        if not settings.cookie_secure and not settings.allow_insecure_cookie:
            raise ConfigurationError(
                "MORNET_COOKIE_SECURE must be true in production (serve the pages over HTTPS); "
                "set MORNET_ALLOW_INSECURE_COOKIE=true to override deliberately"
            )
        return production

    path = settings.data_dir / "secrets.json"
    stored: dict[str, str] = {}
    if path.exists():
        stored = json.loads(path.read_text())
    changed = False
    for name in RuntimeSecrets.model_fields:
        if not stored.get(name):
            stored[name] = _generate(name)
            changed = True
    if changed:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        # Written private from the start: the file holds signing keys.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(stored, handle, indent=2)
    resolved = {
        name: getattr(settings, name) or stored[name] for name in RuntimeSecrets.model_fields
    }
    _check_master_key(resolved["wallet_master_key"])
    _check_operator_key(resolved["chain_operator_key"])
    return RuntimeSecrets.model_validate(resolved)


settings = Settings()
