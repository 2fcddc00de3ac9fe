"""Treasury test helpers: operators with wallets, a treasury taken to active on anvil, and
the chain's view of the Safe."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.chain.service import ChainHandle
from mornet.db import unit_of_work
from mornet.runtime import Runtime
from mornet.treasury import safe as safes
from mornet.treasury import service
from mornet.wallets import service as wallets
from tests.factories import user_with_token

WEI = Decimal(10**18)


@dataclass(frozen=True)
class Operator:
    user_id: uuid.UUID
    email: str
    headers: dict[str, str]
    address: str


async def operator(client: httpx.AsyncClient, session: AsyncSession) -> Operator:
    user, headers = await user_with_token(client, session, admin=True)
    address = (await wallets.wallet_of(session, user.id)).address
    return Operator(user.id, user.email, headers, address)


async def settle(runtime: Runtime, chain: ChainHandle, rounds: int = 4) -> None:
    """Let the chain take what is queued and the treasury follow, as the running platform's
    submitter and treasury loop do."""
    for _ in range(rounds):
        await chain.submitter.drain(max_seconds=120)
        async with unit_of_work(runtime.sessions) as session:
            await service.advance(session, chain)


async def active_treasury(
    runtime: Runtime, chain: ChainHandle, owners: list[str], threshold: int
) -> str:
    """Create the treasury and take it to active; returns the Safe's address."""
    async with unit_of_work(runtime.sessions) as session:
        await service.create(session, chain, owners=owners, threshold=threshold, actor_id=None)
    await settle(runtime, chain)
    async with runtime.sessions() as session:
        treasury = await service.treasury_of(session, chain)
    assert treasury.status == "active", treasury.error
    assert treasury.safe is not None
    return treasury.safe


def on_chain(chain: ChainHandle, name: str, address: str) -> Any:
    """A Safe-side contract (`safes.SINGLETON`, `safes.PARAMETERS`) at `address`."""
    return chain.client.w3.eth.contract(address=address, abi=safes.interface(name).abi)


async def token_balance(chain: ChainHandle, token: str, address: str) -> Decimal:
    return Decimal(await chain.balance_of(token, address)) / WEI
