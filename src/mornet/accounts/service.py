"""An account across contexts: opening one (the identity and its wallet, in one transaction)
and blocking one (the identity refused everywhere, its queued transfers cancelled)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from mornet.chain import service as chain
from mornet.crypto import WalletCipher
from mornet.identity import service as identity
from mornet.identity.schemas import Role
from mornet.identity.throttle import Attempt
from mornet.wallets import service as wallets


async def register_account(
    session: AsyncSession,
    cipher: WalletCipher,
    *,
    email: str,
    password: str,
    full_name: str,
    role: Role = Role.USER,
    attempt: Attempt | None = None,
) -> identity.User:
    user = await identity.register(
        session, email=email, password=password, full_name=full_name, role=role, attempt=attempt
    )
    await wallets.open_wallet(session, user_id=user.id, cipher=cipher)
    return user


async def ensure_admin_account(
    session: AsyncSession, cipher: WalletCipher, *, email: str, password: str, full_name: str
) -> identity.User:
    user = await identity.ensure_admin(session, email=email, password=password, full_name=full_name)
    await wallets.open_wallet(session, user_id=user.id, cipher=cipher)
    return user


async def set_account_blocked(
    session: AsyncSession, *, actor: identity.User, user_id: uuid.UUID, blocked: bool
) -> identity.User:
    """Block or unblock a user. Blocking also cancels the transfers they queued and that no
    transaction carries yet, so nothing of theirs leaves after the block."""
    user = await identity.set_blocked(session, actor=actor, user_id=user_id, blocked=blocked)
    if blocked:
        await chain.cancel_queued_transfers(
            session, requested_by=user.id, reason="cancelled: the account was blocked"
        )
    return user
