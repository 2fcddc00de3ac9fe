"""One settings object for every role, read from `MORNET_*` environment variables.

An engine left unset means its embedded default (SQLite in the data directory, …). Secrets
have no default in production: the embedded mode generates its own once and keeps them in the
data directory, production refuses to start without real ones.
"""

from __future__ import annotations

import json
import os
import secrets
from enum import StrEnum
from pathlib import Path

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
    public_mqtt_url: str = "mqtt://127.0.0.1:1884"
    """The broker address written into an edge agent's configuration."""
    cookie_secure: bool = False
    """Mark the session cookie `Secure` (set it behind HTTPS)."""

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'mornet.db').resolve()}"


class RuntimeSecrets(BaseModel):
    """Secrets the running platform needs, resolved from settings or the data directory."""

    jwt_secret: str


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
        return RuntimeSecrets(
            jwt_secret=_check_production_secret("jwt_secret", settings.jwt_secret)
        )

    path = settings.data_dir / "secrets.json"
    stored: dict[str, str] = {}
    if path.exists():
        stored = json.loads(path.read_text())
    changed = False
    for name in RuntimeSecrets.model_fields:
        if not stored.get(name):
            stored[name] = secrets.token_urlsafe(48)
            changed = True
    if changed:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        # Written private from the start: the file holds signing keys.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(stored, handle, indent=2)
    configured = {"jwt_secret": settings.jwt_secret}
    return RuntimeSecrets(
        **{k: configured.get(k) or stored[k] for k in RuntimeSecrets.model_fields}
    )


settings = Settings()
