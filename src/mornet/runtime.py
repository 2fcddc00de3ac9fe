"""What a running process holds: settings, resolved secrets, the database engine."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from mornet.config import RuntimeSecrets, Settings, load_runtime_secrets
from mornet.db import create_engine, create_sessionmaker
from mornet.identity.service import TokenSettings


@dataclass
class Runtime:
    settings: Settings
    secrets: RuntimeSecrets
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]

    @property
    def tokens(self) -> TokenSettings:
        return TokenSettings(
            secret=self.secrets.jwt_secret,
            ttl=timedelta(minutes=self.settings.access_token_ttl_minutes),
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        secrets = load_runtime_secrets(settings)
        engine = create_engine(settings.resolved_database_url())
        return cls(
            settings=settings, secrets=secrets, engine=engine, sessions=create_sessionmaker(engine)
        )

    async def close(self) -> None:
        await self.engine.dispose()
