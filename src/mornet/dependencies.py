"""FastAPI dependencies shared by every context's endpoints: the platform and the unit of work.

The composition root (`runtime.Runtime`) is stored as `app.state.platform`; plumbing sees it
only through the `Platform` protocol below, and each context declares the little more it needs
the same way (identity's `IdentityHost`, chain's `ChainHost`), so nothing here knows a context.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Protocol

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mornet.config import RuntimeSecrets, Settings
from mornet.crypto import WalletCipher
from mornet.db import unit_of_work


class Platform(Protocol):
    """What every request may use: configuration, secrets, the database, the key cipher."""

    settings: Settings
    secrets: RuntimeSecrets
    sessions: async_sessionmaker[AsyncSession]
    cipher: WalletCipher


def platform_of(request: Request) -> object:
    """The composition root as stored on the app; contexts narrow it to their protocol."""
    return request.app.state.platform


def get_platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed when the endpoint returns, rolled back if it
    raises. Declared with scope="function" so the commit happens before the response is sent."""
    async with unit_of_work(get_platform(request).sessions) as session:
        yield session


async def get_settings(request: Request) -> Settings:
    return get_platform(request).settings


async def get_cipher(request: Request) -> WalletCipher:
    return get_platform(request).cipher


async def platform_dependency(request: Request) -> Platform:
    # Dependencies are coroutines: FastAPI runs a plain function in its thread pool, a hop
    # that costs more than the lookup itself.
    return get_platform(request)


PlatformDep = Annotated[Platform, Depends(platform_dependency)]
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]
CipherDep = Annotated[WalletCipher, Depends(get_cipher)]
