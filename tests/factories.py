"""Small keyword-only factories for test data, through the same doors users take: a user is
registered as registration does (identity and wallet), a household is created by its service.

The factories that write take the test's `session` (the `session` fixture carries the
runtime's key cipher in `session.info`, so wallets open as the platform opens them)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.accounts import service as accounts
from mornet.crypto import WalletCipher
from mornet.households import service as households
from mornet.households.models import Household
from mornet.identity import service as identity
from mornet.identity.models import User
from mornet.identity.schemas import Role

PASSWORD = "correct horse battery"


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}@example.com"


CIPHER = "mornet.test.cipher"
"""`session.info` key of the runtime's wallet cipher (set by the `session` fixture)."""


def _cipher(session: AsyncSession) -> WalletCipher:
    cipher = session.info.get(CIPHER)
    assert isinstance(cipher, WalletCipher), "use the `session` fixture (it carries the cipher)"
    return cipher


async def create_user(
    session: AsyncSession,
    *,
    email: str | None = None,
    password: str = PASSWORD,
    full_name: str = "Test User",
    admin: bool = False,
    with_wallet: bool = True,
) -> User:
    """A registered user with their wallet (`with_wallet=False`: one from before wallets)."""
    if not with_wallet:
        user = await identity.register(
            session, email=email or unique_email(), password=password, full_name=full_name
        )
    elif admin:
        user = await accounts.ensure_admin_account(
            session,
            _cipher(session),
            email=email or unique_email("admin"),
            password=password,
            full_name=full_name,
        )
    else:
        user = await accounts.register_account(
            session,
            _cipher(session),
            email=email or unique_email(),
            password=password,
            full_name=full_name,
            role=Role.USER,
        )
    await session.commit()
    return user


async def create_household(
    session: AsyncSession,
    *,
    owner: User,
    name: str = "Home",
    address: str = "Tverskaya 1, Moscow",
    region: str = "RU-MOW",
) -> Household:
    household = await households.create_household(
        session, owner=owner, name=name, address=address, region_code=region
    )
    await session.commit()
    return household


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, str]:
    response = await client.post("/api/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def user_with_token(
    client: httpx.AsyncClient, session: AsyncSession, *, admin: bool = False, **kwargs: Any
) -> tuple[User, dict[str, str]]:
    user = await create_user(session, admin=admin, **kwargs)
    return user, await login(client, user.email)


async def post_household(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    *,
    name: str = "Home",
    address: str = "Tverskaya 1, Moscow",
    region: str = "RU-MOW",
) -> dict[str, Any]:
    """A household created through the API (tests of that API)."""
    response = await client.post(
        "/api/households",
        json={"name": name, "address": address, "region": region},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body
