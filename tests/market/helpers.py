"""Market test helpers: households in one region, funded wallets, balances on chain."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.chain.models import OperationKind
from mornet.chain.service import ChainHandle
from mornet.db import unit_of_work
from mornet.market import runtime as market_runtime
from mornet.runtime import Runtime
from mornet.tokens import service as tokens
from mornet.wallets import service as wallets
from tests.factories import user_with_token

WEI = Decimal(10**18)


@dataclass(frozen=True)
class Trader:
    user_id: uuid.UUID
    headers: dict[str, str]
    household_id: uuid.UUID
    email: str


async def trader(client: httpx.AsyncClient, session: AsyncSession, region: str) -> Trader:
    """A user with a household in `region`."""
    user, headers = await user_with_token(client, session)
    made = await client.post(
        "/api/households", json={"name": "Home", "address": "A", "region": region}, headers=headers
    )
    assert made.status_code == 201, made.text
    return Trader(user.id, headers, uuid.UUID(made.json()["id"]), user.email)


async def give(runtime: Runtime, chain: ChainHandle, account: str, **amounts: str) -> None:
    """Mint to a user id or an address (as an operator would), then wait for the chain."""
    async with unit_of_work(runtime.sessions) as tx:
        for token, amount in amounts.items():
            await tokens.move(
                tx,
                chain,
                kind=OperationKind.MINT,
                token=token,
                account=account,
                amount=Decimal(amount),
                idempotency_key=f"test:{uuid.uuid4()}",
                actor_id=None,
            )
    await chain.submitter.drain(max_seconds=60)


async def balance(
    chain: ChainHandle, session: AsyncSession, user_id: uuid.UUID, token: str
) -> Decimal:
    wallet = await wallets.wallet_of(session, user_id)
    return Decimal(await chain.balance_of(token, wallet.address)) / WEI


async def settle(runtime: Runtime, chain: ChainHandle) -> None:
    """Batch the trades made (as the market's batcher does), then wait for the chain."""
    await market_runtime.batch_round(runtime.sessions, chain)
    await chain.submitter.drain(max_seconds=60)
