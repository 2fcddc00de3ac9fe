"""The DAO treasury on anvil with the real Safe v1.4.1 contracts: creation and hand-over,
proposals, votes, execution once per nonce, and the governed parameters."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from eth_account import Account
from hexbytes import HexBytes
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.chain import service as chain_service
from mornet.chain.models import OperationKind
from mornet.chain.service import ChainHandle
from mornet.db import unit_of_work
from mornet.runtime import Runtime
from mornet.tokens import service as tokens
from mornet.treasury import safe as safes
from mornet.treasury import service
from tests.factories import user_with_token
from tests.market.helpers import give
from tests.treasury.helpers import (
    Operator,
    active_treasury,
    on_chain,
    operator,
    settle,
    token_balance,
)

pytestmark = pytest.mark.asyncio


async def _three(client: httpx.AsyncClient, session: AsyncSession) -> list[Operator]:
    return [await operator(client, session) for _ in range(3)]


async def _propose(
    client: httpx.AsyncClient, headers: dict[str, str], **body: object
) -> dict[str, object]:
    made = await client.post("/api/treasury/proposals", json=body, headers=headers)
    assert made.status_code == 201, made.text
    return dict(made.json())


async def _confirm(
    client: httpx.AsyncClient, proposal_id: object, headers: dict[str, str], **body: object
) -> httpx.Response:
    return await client.post(
        f"/api/treasury/proposals/{proposal_id}/confirmations", json=body, headers=headers
    )


async def test_creating_the_treasury_hands_the_contracts_to_a_2_of_3_safe(
    runtime: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ops = await _three(client, session)
    # Revenue paid before the treasury existed waits at the fallback address.
    await give(runtime, chain, service.FALLBACK_ADDRESS, GCC="12.5")
    safe = await active_treasury(runtime, chain, [o.email for o in ops], 2)

    shown = (await client.get("/api/treasury", headers=ops[0].headers)).json()
    assert shown["status"] == "active"
    assert shown["address"] == safe
    assert shown["threshold"] == 2
    assert shown["nonce"] == 0
    assert sorted(o["address"] for o in shown["owners"]) == sorted(o.address for o in ops)
    assert {o["email"] for o in shown["owners"]} == {o.email for o in ops}
    assert Decimal(shown["balances"]["GCC"]) == Decimal("12.5")
    assert await token_balance(chain, "GCC", service.FALLBACK_ADDRESS) == 0

    safe_contract = on_chain(chain, safes.SINGLETON, safe)
    assert await safe_contract.functions.getThreshold().call() == 2
    for token, address in chain.contracts.items():
        contract = chain.client.token(address)
        assert await contract.functions.owner().call() == safe, token
        assert await contract.functions.protected(safe).call() is True
        # The operator keeps running the routine batches.
        assert await contract.functions.is_minter(chain.signer).call() is True
    parameters = on_chain(chain, safes.PARAMETERS, shown["parameters_contract"])
    assert await parameters.functions.owner().call() == safe
    assert await parameters.functions.values(safes.parameter_key("gcm_rate")).call() == 10**18

    # Revenue goes to the Safe from now on; the parameters are governed.
    async with runtime.sessions() as fresh:
        assert await service.revenue_address(fresh, chain, None) == safe
    again = await client.post(
        "/api/admin/treasury",
        json={"owners": [ops[0].email], "threshold": 1},
        headers=ops[0].headers,
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "treasury_exists"
    refused = await client.put(
        "/api/admin/parameters/gcm_rate", json={"value": "3"}, headers=ops[0].headers
    )
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "governed_by_treasury"


async def test_a_transfer_executes_only_at_the_threshold_and_only_owners_count(
    runtime: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ops = await _three(client, session)
    safe = await active_treasury(runtime, chain, [o.email for o in ops], 2)
    await give(runtime, chain, safe, GCC="100")
    receiver, receiver_headers = await user_with_token(client, session)
    outsider = await operator(client, session)
    _, plain = await user_with_token(client, session)

    proposal = await _propose(
        client,
        ops[0].headers,
        kind="transfer",
        token="GCC",
        to=receiver.email,
        amount="30",
        description="Pay the installer",
    )
    assert proposal["status"] == "open"
    assert proposal["nonce"] == 0
    assert proposal["confirmations"] == []
    assert proposal["confirmations_required"] == 2

    first = await _confirm(client, proposal["id"], ops[0].headers)
    assert first.status_code == 201, first.text
    assert [c["owner"] for c in first.json()["confirmations"]] == [ops[0].address]
    # The same owner twice counts once; a non-owner operator and a plain user count never.
    assert (await _confirm(client, proposal["id"], ops[0].headers)).status_code == 409
    denied = await _confirm(client, proposal["id"], outsider.headers)
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "not_an_owner"
    assert (await _confirm(client, proposal["id"], plain)).status_code == 403
    await settle(runtime, chain)
    assert await token_balance(chain, "GCC", safe) == 100
    still = await client.get(f"/api/treasury/proposals/{proposal['id']}", headers=ops[0].headers)
    assert still.json()["status"] == "open"

    second = await _confirm(client, proposal["id"], ops[1].headers)
    assert second.status_code == 201
    assert second.json()["status"] == "executing"
    await settle(runtime, chain)
    done = (
        await client.get(f"/api/treasury/proposals/{proposal['id']}", headers=ops[2].headers)
    ).json()
    assert done["status"] == "executed"
    assert done["tx_hash"]
    assert await token_balance(chain, "GCC", safe) == 70
    assert await token_balance(chain, "GCC", (await _wallet(session, receiver.id))) == 30
    assert await on_chain(chain, safes.SINGLETON, safe).functions.nonce().call() == 1
    # The receiver's wallet history shows where it came from; a closed proposal takes no votes.
    history = (await client.get("/api/wallet/transactions", headers=receiver_headers)).json()
    assert any(e["counterparty"] == safe and Decimal(e["amount"]) == 30 for e in history)
    assert (await _confirm(client, proposal["id"], ops[2].headers)).status_code == 409
    # Plain users see the treasury and its executed proposals, read-only.
    seen = (await client.get("/api/treasury/proposals", headers=plain)).json()
    assert [p["id"] for p in seen["items"]] == [proposal["id"]]
    refused = await client.post(
        "/api/treasury/proposals",
        json={"kind": "transfer", "token": "GCC", "to": receiver.email, "amount": "1"},
        headers=plain,
    )
    assert refused.status_code == 403
    # The books still balance: the Safe's payout is recorded as a move.
    async with runtime.sessions() as fresh:
        assert (await chain_service.reconcile_tokens(fresh, chain)).ok


async def _wallet(session: AsyncSession, user_id: uuid.UUID) -> str:
    from mornet.wallets import service as wallets

    return (await wallets.wallet_of(session, user_id)).address


async def test_forged_and_malformed_signatures_are_refused_and_an_external_owner_signs(
    runtime: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ops = await _three(client, session)
    external = Account.create()
    safe = await active_treasury(runtime, chain, [ops[0].email, ops[1].email, external.address], 2)
    await give(runtime, chain, safe, E="10")
    receiver, _ = await user_with_token(client, session)
    proposal = await _propose(
        client, ops[0].headers, kind="transfer", token="E", to=receiver.email, amount="4"
    )
    digest = bytes(HexBytes(proposal["safe_tx_hash"]))

    forger = Account.create().unsafe_sign_hash(digest)
    forged = await _confirm(
        client, proposal["id"], ops[2].headers, signature=forger.signature.to_0x_hex()
    )
    assert forged.status_code == 403
    # The external owner's signature of another hash speaks for someone else: refused too.
    other = external.unsafe_sign_hash(b"\x01" * 32)
    assert (
        await _confirm(
            client, proposal["id"], ops[2].headers, signature=other.signature.to_0x_hex()
        )
    ).status_code == 403
    broken = await _confirm(client, proposal["id"], ops[2].headers, signature="0x" + "00" * 65)
    assert broken.status_code == 422
    assert (
        await _confirm(client, proposal["id"], ops[2].headers, signature="0x12")
    ).status_code == 422

    signed = external.unsafe_sign_hash(digest)
    accepted = await _confirm(
        client, proposal["id"], ops[2].headers, signature=signed.signature.to_0x_hex()
    )
    assert accepted.status_code == 201, accepted.text
    assert [c["owner"] for c in accepted.json()["confirmations"]] == [external.address]
    assert accepted.json()["status"] == "open"
    assert (await _confirm(client, proposal["id"], ops[0].headers)).json()["status"] == "executing"
    await settle(runtime, chain)
    assert await token_balance(chain, "E", safe) == 6


async def test_the_operator_cannot_move_the_treasurys_tokens_with_its_batches(
    runtime: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ops = await _three(client, session)
    safe = await active_treasury(runtime, chain, [o.email for o in ops], 2)
    await give(runtime, chain, safe, GCC="50")
    thief = Account.create().address
    async with unit_of_work(runtime.sessions) as tx:
        await chain_service.request(
            tx,
            chain,
            token="GCC",
            kind=OperationKind.TRANSFER,
            moves=[chain_service.Move(amount=10**18, sender=safe, receiver=thief)],
            idempotency_key=f"test:{uuid.uuid4()}",
        )
        await chain_service.request(
            tx,
            chain,
            token="GCC",
            kind=OperationKind.BURN,
            moves=[chain_service.Move(amount=10**18, sender=safe)],
            idempotency_key=f"test:{uuid.uuid4()}",
        )
    await chain.submitter.drain()
    async with runtime.sessions() as fresh:
        moves = await chain_service.operations_of(fresh, safe)
    failed = [m for m in moves if m.kind in (OperationKind.TRANSFER, OperationKind.BURN)]
    assert len(failed) == 2
    for move in failed:
        assert move.status == "failed"
        assert move.error is not None
        assert "protected" in move.error
    assert await token_balance(chain, "GCC", safe) == 50
    assert await token_balance(chain, "GCC", thief) == 0


async def test_a_parameter_changes_only_when_its_proposal_executes_and_is_then_used(
    runtime: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ops = await _three(client, session)
    safe = await active_treasury(runtime, chain, [o.email for o in ops], 2)
    proposal = await _propose(
        client, ops[0].headers, kind="parameter", name="gcm_rate", value="4", description="Halve"
    )
    assert (await _confirm(client, proposal["id"], ops[0].headers)).status_code == 201
    await settle(runtime, chain)
    async with runtime.sessions() as fresh:
        assert await tokens.gcm_rate(fresh) == 1
    assert (await _confirm(client, proposal["id"], ops[2].headers)).status_code == 201
    await settle(runtime, chain)
    async with runtime.sessions() as fresh:
        rate = await tokens.gcm_rate(fresh)
    assert rate == 4
    assert tokens.gcm_for_cost(Decimal("10"), rate) == Decimal("2.5")
    shown = (await client.get("/api/admin/parameters/gcm_rate", headers=ops[1].headers)).json()
    assert Decimal(shown["value"]) == 4
    assert shown["governed"] is True
    treasury = (await client.get("/api/treasury", headers=ops[0].headers)).json()
    parameters = on_chain(chain, safes.PARAMETERS, treasury["parameters_contract"])
    key = safes.parameter_key("gcm_rate")
    assert await parameters.functions.values(key).call() == 4 * 10**18
    assert treasury["address"] == safe
    unknown = await client.post(
        "/api/treasury/proposals",
        json={"kind": "parameter", "name": "no_such", "value": "1"},
        headers=ops[0].headers,
    )
    assert unknown.status_code == 404
    beyond = await client.post(
        "/api/treasury/proposals",
        json={"kind": "parameter", "name": "market_spread", "value": "2"},
        headers=ops[0].headers,
    )
    assert beyond.status_code == 422
    assert beyond.json()["error"]["code"] == "parameter_out_of_bounds"


async def test_one_execution_per_nonce_and_later_nonces_wait_their_turn(
    runtime: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ops = await _three(client, session)
    safe = await active_treasury(runtime, chain, [o.email for o in ops], 2)
    await give(runtime, chain, safe, W="9")
    receiver, _ = await user_with_token(client, session)
    body = {"kind": "transfer", "token": "W", "to": receiver.email}
    first = await _propose(client, ops[0].headers, **body, amount="1")
    rival = await _propose(client, ops[1].headers, **body, amount="2")
    later = await _propose(client, ops[2].headers, **body, amount="3", nonce=1)
    assert (first["nonce"], rival["nonce"], later["nonce"]) == (0, 0, 1)

    # The later nonce reaches its threshold first: it waits for nonce 0.
    for voter in ops[:2]:
        assert (await _confirm(client, later["id"], voter.headers)).status_code == 201
    await settle(runtime, chain)
    assert await token_balance(chain, "W", safe) == 9
    # Both proposals at nonce 0 reach the threshold; one executes, the other is replaced.
    for voter in ops[:2]:
        await _confirm(client, first["id"], voter.headers)
        await _confirm(client, rival["id"], voter.headers)
    await settle(runtime, chain, rounds=6)
    statuses = {
        p["id"]: p["status"]
        for p in (await client.get("/api/treasury/proposals", headers=ops[0].headers)).json()[
            "items"
        ]
    }
    assert statuses == {first["id"]: "executed", rival["id"]: "replaced", later["id"]: "executed"}
    assert await token_balance(chain, "W", safe) == 5
    assert await on_chain(chain, safes.SINGLETON, safe).functions.nonce().call() == 2
    # A nonce the Safe has passed cannot be proposed at.
    passed = await client.post(
        "/api/treasury/proposals", json={**body, "amount": "1", "nonce": 0}, headers=ops[0].headers
    )
    assert passed.status_code == 422


async def test_a_proposal_that_can_no_longer_pass_is_rejected(
    runtime: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ops = await _three(client, session)
    await active_treasury(runtime, chain, [o.email for o in ops], 2)
    proposal = await _propose(
        client, ops[0].headers, kind="minter", action="grant", address=Account.create().address
    )
    against = await client.post(
        f"/api/treasury/proposals/{proposal['id']}/rejections", json={}, headers=ops[1].headers
    )
    assert against.status_code == 201
    assert against.json()["status"] == "open"  # two owners may still confirm
    final = await client.post(
        f"/api/treasury/proposals/{proposal['id']}/rejections", json={}, headers=ops[2].headers
    )
    assert final.json()["status"] == "rejected"
    assert len(final.json()["rejections"]) == 2
    assert (await _confirm(client, proposal["id"], ops[0].headers)).status_code == 409


async def test_minters_and_owners_change_only_by_proposal(
    runtime: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ops = await _three(client, session)
    safe = await active_treasury(runtime, chain, [o.email for o in ops], 2)
    minter = Account.create().address
    grant = await _propose(client, ops[0].headers, kind="minter", action="grant", address=minter)
    newcomer = await operator(client, session)
    add = await _propose(
        client, ops[0].headers, kind="owners", action="add", owner=newcomer.email, nonce=1
    )
    raise_bar = await _propose(
        client, ops[0].headers, kind="owners", action="threshold", threshold=3, nonce=2
    )
    for proposal in (grant, add, raise_bar):
        for voter in ops[:2]:
            assert (await _confirm(client, proposal["id"], voter.headers)).status_code == 201
    await settle(runtime, chain, rounds=8)
    for address in chain.contracts.values():
        assert await chain.client.token(address).functions.is_minter(minter).call() is True
    safe_contract = on_chain(chain, safes.SINGLETON, safe)
    assert newcomer.address in await safe_contract.functions.getOwners().call()
    assert await safe_contract.functions.getThreshold().call() == 3
    shown = (await client.get("/api/treasury", headers=newcomer.headers)).json()
    assert shown["threshold"] == 3
    assert newcomer.email in {o["email"] for o in shown["owners"]}
    # The newcomer is an owner now: its confirmation counts.
    remove = await _propose(
        client, newcomer.headers, kind="owners", action="remove", owner=ops[2].email
    )
    assert (await _confirm(client, remove["id"], newcomer.headers)).status_code == 201


async def test_a_worker_killed_between_threshold_and_receipt_executes_once(
    runtime: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    from mornet.chain.submitter import Submitter

    ops = await _three(client, session)
    safe = await active_treasury(runtime, chain, [o.email for o in ops], 2)
    await give(runtime, chain, safe, H="8")
    receiver, _ = await user_with_token(client, session)
    proposal = await _propose(
        client, ops[0].headers, kind="transfer", token="H", to=receiver.email, amount="5"
    )
    await _confirm(client, proposal["id"], ops[0].headers)
    await _confirm(client, proposal["id"], ops[1].headers)
    # The worker signs the execution, commits it, and dies before broadcasting.
    dying = chain.submitter
    dying.lease = timedelta(seconds=0.2)
    assert await dying.sign_next() is not None
    # A new worker takes the key over once the lease lapses, and the treasury looks again.
    await asyncio.sleep(0.3)
    heir = Submitter(runtime.sessions, chain.client, chain.contracts, holder="heir")
    await heir.drain()
    async with unit_of_work(runtime.sessions) as tx:
        await service.advance(tx, chain)
    async with unit_of_work(runtime.sessions) as tx:
        await service.advance(tx, chain)
    await heir.drain()
    assert await token_balance(chain, "H", safe) == 3
    assert await on_chain(chain, safes.SINGLETON, safe).functions.nonce().call() == 1
    shown = (
        await client.get(f"/api/treasury/proposals/{proposal['id']}", headers=ops[0].headers)
    ).json()
    assert shown["status"] == "executed"


async def test_simulation_makes_three_demo_operators_owning_a_2_of_3_treasury(
    runtime: Runtime, chain: ChainHandle, client: httpx.AsyncClient
) -> None:
    emails = await runtime.create_demo_treasury()
    await settle(runtime, chain)
    assert await runtime.create_demo_treasury() == emails  # a restart keeps what exists
    login = await client.post(
        "/api/auth/login", json={"email": emails[1], "password": "operator2-password"}
    )
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    shown = (await client.get("/api/treasury", headers=headers)).json()
    assert shown["status"] == "active"
    assert shown["threshold"] == 2
    assert sorted(o["email"] for o in shown["owners"]) == emails


async def test_the_market_reserve_is_swept_to_the_safe_and_topped_up_by_proposal(
    runtime: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    from mornet.market.service import MARKET_RESERVE

    ops = await _three(client, session)
    await give(runtime, chain, MARKET_RESERVE, GCC="40")
    sweep = {"amount": "25", "idempotency_key": "sweep-1"}
    early = await client.post("/api/admin/market/reserve/sweep", json=sweep, headers=ops[0].headers)
    assert early.status_code == 404  # no treasury to sweep to yet
    safe = await active_treasury(runtime, chain, [o.email for o in ops], 2)
    swept = await client.post("/api/admin/market/reserve/sweep", json=sweep, headers=ops[0].headers)
    assert swept.status_code == 202, swept.text
    again = await client.post("/api/admin/market/reserve/sweep", json=sweep, headers=ops[1].headers)
    assert again.json()["operation_key"] == swept.json()["operation_key"]
    too_much = await client.post(
        "/api/admin/market/reserve/sweep",
        json={"amount": "16", "idempotency_key": "sweep-2"},
        headers=ops[0].headers,
    )
    assert too_much.status_code == 422
    assert too_much.json()["error"]["code"] == "market_reserve_short"
    _, plain = await user_with_token(client, session)
    sweep_3 = {"amount": "1", "idempotency_key": "sweep-3"}
    denied = await client.post("/api/admin/market/reserve/sweep", json=sweep_3, headers=plain)
    assert denied.status_code == 403
    await settle(runtime, chain)
    assert await token_balance(chain, "GCC", safe) == 25
    assert await token_balance(chain, "GCC", MARKET_RESERVE) == 15

    top_up = await _propose(
        client, ops[0].headers, kind="transfer", token="GCC", to=MARKET_RESERVE, amount="10"
    )
    for voter in ops[1:]:
        await _confirm(client, top_up["id"], voter.headers)
    await settle(runtime, chain)
    assert await token_balance(chain, "GCC", MARKET_RESERVE) == 25
    assert await token_balance(chain, "GCC", safe) == 15


async def test_a_3_of_5_treasury_needs_three_confirmations(
    runtime: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ops = [await operator(client, session) for _ in range(5)]
    safe = await active_treasury(runtime, chain, [o.email for o in ops], 3)
    await give(runtime, chain, safe, GCM="9")
    assert await on_chain(chain, safes.SINGLETON, safe).functions.getThreshold().call() == 3
    proposal = await _propose(
        client, ops[4].headers, kind="transfer", token="GCM", to=ops[0].email, amount="2"
    )
    for voter in ops[:2]:
        assert (await _confirm(client, proposal["id"], voter.headers)).json()["status"] == "open"
    await settle(runtime, chain)
    assert await token_balance(chain, "GCM", safe) == 9
    third = await _confirm(client, proposal["id"], ops[3].headers)
    assert third.json()["status"] == "executing"
    await settle(runtime, chain)
    assert await token_balance(chain, "GCM", safe) == 7
    assert await token_balance(chain, "GCM", ops[0].address) == 2
