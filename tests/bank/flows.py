"""The steps bank tests share: reach the sandbox bank, let everything in flight settle, pay a
deposit through the bank's page, bind a card through the bank's form."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx

from mornet.bank.runtime import Bank, mint_round, payout_round
from mornet.bank.sandbox import SandboxBank
from mornet.chain.service import ChainHandle
from mornet.runtime import Runtime


def sandbox_of(runtime: Runtime) -> SandboxBank:
    assert isinstance(runtime.bank, Bank)
    assert runtime.bank.sandbox is not None
    return runtime.bank.sandbox


def bank_of(runtime: Runtime) -> Bank:
    assert runtime.bank is not None
    return runtime.bank


async def settle(runtime: Runtime, chain: ChainHandle, *, payouts: bool = True) -> None:
    """Deliver every notification, relay the events, carry out the chain moves and drive the
    payouts, until nothing is left in flight (a withdrawal takes a few such rounds)."""
    assert runtime.relay is not None
    for _ in range(5):
        await sandbox_of(runtime).idle()
        await runtime.relay.drain()
        await mint_round(runtime.sessions, chain)  # the minter, without its batching pause
        await chain.submitter.drain(max_seconds=60)
        await runtime.relay.drain()
        if payouts:
            await payout_round(runtime.sessions, bank_of(runtime).gateway)


async def deposit(client: httpx.AsyncClient, headers: dict[str, str], amount: str) -> Any:
    opened = await client.post("/api/bank/deposits", json={"amount": amount}, headers=headers)
    assert opened.status_code == 201, opened.text
    return opened.json()


async def paid_deposit(
    runtime: Runtime,
    chain: ChainHandle,
    client: httpx.AsyncClient,
    headers: dict[str, str],
    amount: str,
) -> Any:
    """A deposit paid on the sandbox bank's page, its GCC minted on chain."""
    opened = await deposit(client, headers, amount)
    paid = await client.post(opened["payment_url"], data={"action": "pay"})
    assert paid.status_code == 303
    await settle(runtime, chain)
    seen = await client.get(f"/api/bank/deposits/{opened['id']}", headers=headers)
    assert seen.json()["minted"] is True
    assert Decimal(seen.json()["amount"]) == Decimal(amount)
    return seen.json()


async def bound_card(
    runtime: Runtime, chain: ChainHandle, client: httpx.AsyncClient, headers: dict[str, str]
) -> Any:
    """A card bound through the sandbox bank's card form."""
    started = await client.post("/api/bank/cards", headers=headers)
    assert started.status_code == 201, started.text
    card = started.json()
    assert card["status"] == "pending"
    form = await client.get(card["form_url"])
    assert form.status_code == 200
    bound = await client.post(card["form_url"], data={"action": "bind"})
    assert bound.status_code == 303
    await settle(runtime, chain)
    cards = (await client.get("/api/bank/cards", headers=headers)).json()
    [active] = [c for c in cards if c["id"] == card["id"]]
    assert active["status"] == "active"
    return active
