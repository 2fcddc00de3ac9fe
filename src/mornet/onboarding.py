"""Opening an account: the identity and its wallet, in one transaction."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from mornet.identity import service as identity
from mornet.identity.models import Role, User
from mornet.identity.throttle import Attempt
from mornet.wallets import service as wallets
from mornet.wallets.crypto import WalletCipher


async def register_account(
    session: AsyncSession,
    cipher: WalletCipher,
    *,
    email: str,
    password: str,
    full_name: str,
    role: Role = Role.USER,
    attempt: Attempt | None = None,
) -> User:
    user = await identity.register(
        session, email=email, password=password, full_name=full_name, role=role, attempt=attempt
    )
    await wallets.open_wallet(session, user_id=user.id, cipher=cipher)
    return user


async def ensure_admin_account(
    session: AsyncSession, cipher: WalletCipher, *, email: str, password: str, full_name: str
) -> User:
    user = await identity.ensure_admin(session, email=email, password=password, full_name=full_name)
    await wallets.open_wallet(session, user_id=user.id, cipher=cipher)
    return user
