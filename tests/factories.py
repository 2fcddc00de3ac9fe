"""Small keyword-only factories for test data, through the same doors users take."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.identity import service as identity
from mornet.identity.models import User

PASSWORD = "correct horse battery"


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}@example.com"


async def create_user(
    session: AsyncSession,
    *,
    email: str | None = None,
    password: str = PASSWORD,
    full_name: str = "Test User",
    admin: bool = False,
) -> User:
    if admin:
        user = await identity.ensure_admin(
            session, email=email or unique_email("admin"), password=password, full_name=full_name
        )
    else:
        user = await identity.register(
            session, email=email or unique_email(), password=password, full_name=full_name
        )
    await session.commit()
    return user


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, str]:
    response = await client.post("/api/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def user_with_token(
    client: httpx.AsyncClient, session: AsyncSession, *, admin: bool = False, **kwargs: Any
) -> tuple[User, dict[str, str]]:
    user = await create_user(session, admin=admin, **kwargs)
    return user, await login(client, user.email)


async def create_household(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    *,
    name: str = "Home",
    address: str = "Tverskaya 1, Moscow",
    region: str = "RU-MOW",
) -> dict[str, Any]:
    response = await client.post(
        "/api/households",
        json={"name": name, "address": address, "region": region},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body
