"""`mornet up --simulate N`: demo households with agents, and prepaid E on chain so the
hourly settlement demo burns units from the first hour."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from mornet.chain.service import ChainHandle
from mornet.identity import service as identity
from mornet.runtime import Runtime
from mornet.simulation import PREPAID_E, simulate_households
from mornet.wallets import service as wallets


async def test_simulated_owners_start_with_prepaid_e_once(
    runtime: Runtime, chain: ChainHandle, session: AsyncSession
) -> None:
    for _ in range(2):  # `mornet up` started twice on the same data
        simulation = await simulate_households(
            runtime.settings,
            runtime.sessions,
            runtime.cipher,
            count=2,
            interval_s=3600,
            handle=chain,
        )
        assert len(simulation.household_ids) == 2
        await simulation.close()
        await chain.submitter.drain(max_seconds=60)
    for index in (1, 2):
        user = await identity.user_by_email(session, f"sim-{index}@mornet.local")
        assert user is not None
        wallet = await wallets.wallet_of(session, user.id)
        assert Decimal(await chain.balance_of("E", wallet.address)) / 10**18 == PREPAID_E
