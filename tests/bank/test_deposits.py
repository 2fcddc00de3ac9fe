"""Deposits through the sandbox bank, which speaks T-Bank's protocol: pay on the bank's page,
the bank notifies (repeatedly, out of order), GCC is minted once through the outbox."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.bank import service
from mornet.bank.models import BankAlert, BankNotification, Deposit
from mornet.bank.protocol import PaymentStatus, sign
from mornet.bank.runtime import mint_round
from mornet.bank.sandbox import SandboxBank
from mornet.chain.models import ChainOperation
from mornet.chain.node import LocalNode
from mornet.chain.service import ChainHandle
from mornet.runtime import Runtime
from mornet.wallets import service as wallets
from tests.bank import flows
from tests.factories import create_user, user_with_token

NOTIFICATIONS = "/api/bank/notifications/tbank"


async def _mints(session: AsyncSession, deposit_id: str) -> list[ChainOperation]:
    """The chain operations minting the deposit's GCC (its batch: none or one)."""
    session.expire_all()
    deposit = await session.get(Deposit, uuid.UUID(deposit_id))
    assert deposit is not None
    rows = await session.scalars(
        select(ChainOperation).where(ChainOperation.idempotency_key == deposit.mint_key)
    )
    return list(rows)


async def test_a_paid_deposit_becomes_gcc_in_the_wallet(
    banking: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user, headers = await user_with_token(client, session)
    deposit = await flows.deposit(client, headers, "500")
    assert deposit["status"] == "NEW"
    assert deposit["payment_url"].startswith("/sandbox/tbank/pay/")
    assert Decimal(deposit["amount"]) == 500

    page = await client.get(deposit["payment_url"])
    assert page.status_code == 200
    assert "500.00 RUB" in page.text
    paid = await client.post(deposit["payment_url"], data={"action": "pay"})
    assert paid.status_code == 303
    await flows.settle(banking, chain)

    seen = (await client.get(f"/api/bank/deposits/{deposit['id']}", headers=headers)).json()
    assert (seen["status"], seen["minted"]) == ("CONFIRMED", True)
    wallet = await wallets.wallet_of(session, user.id)
    assert await chain.balance_of("GCC", wallet.address) == 500 * 10**18
    assert len(await _mints(session, deposit["id"])) == 1
    listed = (await client.get("/api/bank/deposits", headers=headers)).json()
    assert [d["id"] for d in listed["items"]] == [deposit["id"]]


async def test_repeated_reordered_and_unacknowledged_notifications_mint_once(
    banking: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user, headers = await user_with_token(client, session)
    sandbox = flows.sandbox_of(banking)
    sandbox.duplicates, sandbox.reorder, sandbox.ignore_ok = 3, True, 4
    deposit = await flows.deposit(client, headers, "120.50")
    await client.post(deposit["payment_url"], data={"action": "pay"})
    await flows.settle(banking, chain)
    # And the bank sends the confirmation once more, much later.
    payment = sandbox.payments[deposit["payment_id"]]
    again = await client.post(
        NOTIFICATIONS, json=sandbox.notification(payment, PaymentStatus.CONFIRMED)
    )
    assert (again.status_code, again.text) == (200, "OK")
    await flows.settle(banking, chain)

    wallet = await wallets.wallet_of(session, user.id)
    assert await chain.balance_of("GCC", wallet.address) == Decimal("120.50") * 10**18
    assert len(await _mints(session, deposit["id"])) == 1
    stored = await session.scalar(
        select(func.count())
        .select_from(BankNotification)
        .where(BankNotification.payment_id == deposit["payment_id"])
    )
    assert stored == 2  # AUTHORIZED and CONFIRMED, each once


async def test_a_declined_payment_mints_nothing(
    banking: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, headers = await user_with_token(client, session)
    deposit = await flows.deposit(client, headers, "50")
    await client.post(deposit["payment_url"], data={"action": "decline"})
    await flows.settle(banking, chain)
    seen = (await client.get(f"/api/bank/deposits/{deposit['id']}", headers=headers)).json()
    assert (seen["status"], seen["minted"]) == ("REJECTED", False)
    assert await _mints(session, deposit["id"]) == []


async def test_forged_and_mismatched_notifications_are_refused_and_mint_nothing(
    banking: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, headers = await user_with_token(client, session)
    sandbox = flows.sandbox_of(banking)
    deposit = await flows.deposit(client, headers, "300")
    payment = sandbox.payments[deposit["payment_id"]]
    genuine = sandbox.notification(payment, PaymentStatus.CONFIRMED)

    def resigned(**change: Any) -> dict[str, Any]:
        body = {k: v for k, v in {**genuine, **change}.items() if k != "Token"}
        return {**body, "Token": sign(body, sandbox.password)}

    forged = {**genuine, "Amount": 30_000_000}  # the token no longer matches
    assert (await client.post(NOTIFICATIONS, json=forged)).status_code == 403
    wrong_terminal = {**resigned(TerminalKey="SomeoneElse")}
    assert (await client.post(NOTIFICATIONS, json=wrong_terminal)).status_code == 403
    assert (await client.post(NOTIFICATIONS, json={"Status": "CONFIRMED"})).status_code == 403
    stored = await session.scalar(select(func.count()).select_from(BankNotification))
    assert stored == 0  # nothing of a forgery is kept

    for change in (
        {"Amount": 30_000_000},  # correctly signed, but not our amount
        {"OrderId": str(uuid.uuid4())},
        {"PaymentId": 1},
    ):
        refused = await client.post(NOTIFICATIONS, json=resigned(**change))
        assert refused.status_code == 422, change
        assert refused.json()["error"]["code"] == "notification_refused"
    await flows.settle(banking, chain)
    assert await _mints(session, deposit["id"]) == []
    session.expire_all()
    alerts = await session.scalar(select(func.count()).select_from(BankAlert))
    assert alerts == 3
    stored_deposit = await session.get(Deposit, uuid.UUID(deposit["id"]))
    assert stored_deposit is not None
    assert (stored_deposit.status, stored_deposit.minted) == ("NEW", False)

    # The refusals did not shadow the genuine notification.
    accepted = await client.post(NOTIFICATIONS, json=genuine)
    assert (accepted.status_code, accepted.text) == (200, "OK")
    await flows.settle(banking, chain)
    assert len(await _mints(session, deposit["id"])) == 1


async def test_deposits_are_private_bounded_and_need_a_login(
    banking: Runtime, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, owner = await user_with_token(client, session)
    _, intruder = await user_with_token(client, session)
    deposit = await flows.deposit(client, owner, "10")
    foreign = await client.get(f"/api/bank/deposits/{deposit['id']}", headers=intruder)
    assert foreign.status_code == 404
    assert (await client.get("/api/bank/deposits", headers=intruder)).json()["items"] == []
    for amount in ("9.99", "600000.01", "1.001", "-5"):
        refused = await client.post("/api/bank/deposits", json={"amount": amount}, headers=owner)
        assert refused.status_code == 422, amount
    anonymous = await client.post("/api/bank/deposits", json={"amount": "10"})
    assert anonymous.status_code == 401


async def test_top_up_through_the_pages(
    banking: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    from tests.factories import create_user
    from tests.web.test_pages import csrf_from, page_login

    user = await create_user(session)
    await page_login(client, user.email)
    form = await client.get("/bank")
    assert form.status_code == 200
    assert "No deposits yet" in form.text

    refused = await client.post(
        "/bank/deposits", data={"amount": "5", "csrf_token": csrf_from(form)}
    )
    assert refused.status_code == 422
    assert "a deposit is 10 to 600000 RUB" in refused.text
    opened = await client.post(
        "/bank/deposits", data={"amount": "250,50", "csrf_token": csrf_from(form)}
    )
    assert opened.status_code == 303
    payment_page = opened.headers["location"]
    assert payment_page.startswith("/sandbox/tbank/pay/")
    paid = await client.post(payment_page, data={"action": "pay"})
    assert paid.status_code == 303
    assert paid.headers["location"].endswith("/bank")
    await flows.settle(banking, chain)

    listed = await client.get("/bank")
    assert "250.50 RUB" in listed.text
    assert "CONFIRMED" in listed.text
    assert "minted" in listed.text
    wallet = await wallets.wallet_of(session, user.id)
    assert await chain.balance_of("GCC", wallet.address) == Decimal("250.50") * 10**18


async def test_graphql_deposit_and_deposits(
    banking: Runtime, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    from tests.test_graphql import error_codes, gql

    _, headers = await user_with_token(client, session)
    _, other = await user_with_token(client, session)
    opened = await gql(
        client, 'mutation { deposit(amount: "75.25") { id status amount paymentUrl } }', headers
    )
    assert "errors" not in opened, opened
    deposit = opened["data"]["deposit"]
    assert (deposit["status"], Decimal(deposit["amount"])) == ("NEW", Decimal("75.25"))
    mine = await gql(client, "{ deposits { id } }", headers)
    assert mine["data"]["deposits"] == [{"id": deposit["id"]}]
    assert (await gql(client, "{ deposits { id } }", other))["data"]["deposits"] == []
    too_small = await gql(client, 'mutation { deposit(amount: "1") { id } }', headers)
    assert error_codes(too_small) == ["deposit_out_of_bounds"]


async def _reconcile(runtime: Runtime) -> int:
    """One round of the poller, with no quiet period."""
    from datetime import timedelta

    from mornet.bank.runtime import reconcile_round

    assert runtime.bank is not None
    return await reconcile_round(runtime.sessions, runtime.bank.gateway, quiet_for=timedelta(0))


async def test_confirm_checking_is_resolved_by_asking_the_bank(
    banking: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user, headers = await user_with_token(client, session)
    flows.sandbox_of(banking).confirm_checking = True
    deposit = await flows.deposit(client, headers, "42")
    await client.post(deposit["payment_url"], data={"action": "pay"})
    await flows.settle(banking, chain)
    seen = (await client.get(f"/api/bank/deposits/{deposit['id']}", headers=headers)).json()
    assert (seen["status"], seen["minted"]) == ("CONFIRM_CHECKING", False)

    assert await _reconcile(banking) == 1
    await flows.settle(banking, chain)
    seen = (await client.get(f"/api/bank/deposits/{deposit['id']}", headers=headers)).json()
    assert (seen["status"], seen["minted"]) == ("CONFIRMED", True)
    wallet = await wallets.wallet_of(session, user.id)
    assert await chain.balance_of("GCC", wallet.address) == 42 * 10**18
    assert await _reconcile(banking) == 0  # final: no longer asked about
    assert len(await _mints(session, deposit["id"])) == 1


async def test_an_expired_payment_link_is_found_by_asking_the_bank(
    banking: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, headers = await user_with_token(client, session)
    deposit = await flows.deposit(client, headers, "15")
    waiting = await flows.deposit(client, headers, "16")
    await client.post(deposit["payment_url"], data={"action": "expire"})
    assert await _reconcile(banking) == 1  # the other one is still NEW at the bank
    seen = (await client.get(f"/api/bank/deposits/{deposit['id']}", headers=headers)).json()
    assert seen["status"] == "DEADLINE_EXPIRED"
    still = (await client.get(f"/api/bank/deposits/{waiting['id']}", headers=headers)).json()
    assert still["status"] == "NEW"
    await flows.settle(banking, chain)
    assert await _mints(session, deposit["id"]) == []


async def test_reserves_equal_supply_at_every_step(
    banking: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, headers = await user_with_token(client, session)
    _, admin = await user_with_token(client, session, admin=True)

    async def reserves() -> dict[str, Any]:
        answer = await client.get("/api/admin/bank/reserves", headers=admin)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        assert body["ok"], body
        return body

    assert Decimal((await reserves())["escrow_rub"]) == 0
    deposit = await flows.deposit(client, headers, "200")
    await client.post(deposit["payment_url"], data={"action": "pay"})
    await flows.sandbox_of(banking).idle()
    # Confirmed by the bank, not minted yet: in flight.
    mid = await reserves()
    assert Decimal(mid["escrow_rub"]) == 200
    assert (Decimal(mid["gcc_total_supply"]), Decimal(mid["gcc_mints_pending"])) == (0, 200)
    assert banking.relay is not None
    await banking.relay.drain()
    await mint_round(banking.sessions, chain)
    await reserves()  # queued on chain, still in flight
    await chain.submitter.drain(max_seconds=60)
    done = await reserves()
    assert (Decimal(done["gcc_total_supply"]), Decimal(done["gcc_mints_pending"])) == (200, 0)
    assert (await client.get("/api/admin/bank/reserves", headers=headers)).status_code == 403


async def test_gcc_that_no_deposit_backs_breaks_the_reserves(
    banking: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    """The check can fail: GCC minted past the bank (here through the internal service, which
    no operator route offers for GCC) is not backed by roubles."""
    from mornet.bank import service as bank
    from mornet.chain.models import OperationKind
    from mornet.tokens import service as tokens

    user, _ = await user_with_token(client, session)
    await tokens.move(
        session,
        chain,
        kind=OperationKind.MINT,
        token="GCC",
        account=user.email,
        amount=Decimal(5),
        idempotency_key="unbacked",
        actor_id=None,
    )
    await session.commit()
    await chain.submitter.drain(max_seconds=60)
    report = await bank.reserves(session, chain)
    assert (report.gcc_total_supply, report.escrow_rub, report.ok) == (5, 0, False)


async def test_a_worker_killed_between_the_confirmation_and_the_mint_mints_once_after_restart(
    banking: Runtime,
    chain: ChainHandle,
    anvil: LocalNode,
    client: httpx.AsyncClient,
    session: AsyncSession,
) -> None:
    user, headers = await user_with_token(client, session)
    user_id = user.id
    deposit = await flows.deposit(client, headers, "80")
    await client.post(deposit["payment_url"], data={"action": "pay"})
    await flows.sandbox_of(banking).idle()  # CONFIRMED is stored and `OK` answered ...
    seen = (await client.get(f"/api/bank/deposits/{deposit['id']}", headers=headers)).json()
    assert (seen["status"], seen["minted"]) == ("CONFIRMED", True)
    assert await _mints(session, deposit["id"]) == []  # ... and the process dies here.

    restarted = Runtime.from_settings(banking.settings)
    try:
        handle = await restarted.start_chain(rpc_url=anvil.rpc_url, run_submitter=False)
        relay = await restarted.start_events(run_relay=False)
        await relay.drain()
        assert await mint_round(restarted.sessions, handle) == 1  # the new process's minter
        await handle.submitter.drain(max_seconds=60)
        # The old process's relay and submitter come back too: nothing more is minted.
        await flows.settle(banking, chain)
        await relay.drain()
    finally:
        await restarted.close()
    assert len(await _mints(session, deposit["id"])) == 1
    wallet = await wallets.wallet_of(session, user_id)
    assert await chain.balance_of("GCC", wallet.address) == 80 * 10**18


async def test_a_refund_after_the_mint_burns_the_gcc(
    banking: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, admin = await user_with_token(client, session, admin=True)
    user, headers = await user_with_token(client, session)
    deposit = await flows.paid_deposit(banking, chain, client, headers, "100")
    flows.sandbox_of(banking).settle_in_background(deposit["payment_id"], [PaymentStatus.REFUNDED])
    await flows.settle(banking, chain)

    wallet = await wallets.wallet_of(session, user.id)
    assert await chain.balance_of("GCC", wallet.address) == 0
    report = (await client.get("/api/admin/bank/reserves", headers=admin)).json()
    assert report["ok"] is True, report
    assert Decimal(report["gcc_total_supply"]) == Decimal(report["escrow_rub"]) == 0
    session.expire_all()
    burns = await session.scalars(
        select(ChainOperation).where(
            ChainOperation.idempotency_key == f"bank:deposit:{deposit['id']}:refund"
        )
    )
    assert [op.status for op in burns] == ["confirmed"]


async def test_a_refund_of_spent_gcc_is_a_debt_the_reserves_show(
    banking: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, admin = await user_with_token(client, session, admin=True)
    _, headers = await user_with_token(client, session)
    friend = await create_user(session)
    await session.commit()
    deposit = await flows.paid_deposit(banking, chain, client, headers, "100")
    spent = await client.post(
        "/api/wallet/transfers",
        json={"token": "GCC", "to": friend.email, "amount": "100", "idempotency_key": "gift"},
        headers=headers,
    )
    assert spent.status_code == 202, spent.text
    await flows.settle(banking, chain)
    flows.sandbox_of(banking).settle_in_background(deposit["payment_id"], [PaymentStatus.REFUNDED])
    await flows.settle(banking, chain)

    report = (await client.get("/api/admin/bank/reserves", headers=admin)).json()
    assert report["ok"] is False
    assert Decimal(report["gcc_refund_debt"]) == 100
    assert Decimal(report["gcc_total_supply"]) == 100
    assert Decimal(report["escrow_rub"]) == 0
    alerts = (await client.get("/api/admin/bank/alerts", headers=admin)).json()["items"]
    assert [a["kind"] for a in alerts] == ["refund_debt"]
    assert alerts[0]["deposit_id"] == deposit["id"]
    friend_wallet = await wallets.wallet_of(session, friend.id)
    assert await chain.balance_of("GCC", friend_wallet.address) == 100 * 10**18


async def test_deposits_confirmed_together_are_minted_in_one_batch(
    banking: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    payers = [await user_with_token(client, session) for _ in range(3)]
    user_ids = [user.id for user, _ in payers]
    deposits = []
    for index, (_, headers) in enumerate(payers):
        deposits.append(await flows.deposit(client, headers, f"{10 + index}"))
        await client.post(deposits[-1]["payment_url"], data={"action": "pay"})
    await flows.sandbox_of(banking).idle()  # all three confirmed before any mint
    await flows.settle(banking, chain)

    batches = {op.id for d in deposits for op in await _mints(session, d["id"])}
    assert len(batches) == 1
    [batch] = await _mints(session, deposits[0]["id"])
    assert (batch.status, len(batch.items)) == ("confirmed", 3)
    for index, user_id in enumerate(user_ids):
        wallet = await wallets.wallet_of(session, user_id)
        assert await chain.balance_of("GCC", wallet.address) == (10 + index) * 10**18


async def _open_deposits(
    client: httpx.AsyncClient, session: AsyncSession, count: int
) -> list[dict[str, Any]]:
    _, headers = await user_with_token(client, session)
    return [await flows.deposit(client, headers, f"{10 + index}") for index in range(count)]


def _paid_lives(sandbox: SandboxBank, deposits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The notifications of each deposit's paid payment: AUTHORIZED, then CONFIRMED."""
    return [
        sandbox.notification(sandbox.payments[d["payment_id"]], status)
        for d in deposits
        for status in (PaymentStatus.AUTHORIZED, PaymentStatus.CONFIRMED)
    ]


async def _confirmed_and_minted_once(session: AsyncSession, deposits: list[dict[str, Any]]) -> None:
    """Each deposit is CONFIRMED and its GCC minted by exactly one operation, on chain."""
    session.expire_all()
    for deposit in deposits:
        stored = await session.get(Deposit, uuid.UUID(deposit["id"]))
        assert stored is not None
        assert (stored.status, stored.minted) == ("CONFIRMED", True)
        [mint] = await _mints(session, deposit["id"])
        assert mint.status == "confirmed"


async def test_notifications_taken_together_are_each_handled_as_alone(
    banking: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    """One group (one transaction) holding repeats, reversed statuses, a forgery, a mismatch,
    a decline and a malformed one: each gets the outcome it gets alone."""
    sandbox = flows.sandbox_of(banking)
    paid, both, forged, mismatched, declined = await _open_deposits(client, session, 5)

    def note(deposit: dict[str, Any], status: PaymentStatus) -> dict[str, Any]:
        return sandbox.notification(sandbox.payments[deposit["payment_id"]], status)

    def resigned(body: dict[str, Any], **change: Any) -> dict[str, Any]:
        fields = {k: v for k, v in {**body, **change}.items() if k != "Token"}
        return {**fields, "Token": sign(fields, sandbox.password)}

    confirmed = note(paid, PaymentStatus.CONFIRMED)
    group = [
        confirmed,
        note(paid, PaymentStatus.AUTHORIZED),  # late news after the confirmation
        confirmed,  # the same notification twice in one group
        note(both, PaymentStatus.AUTHORIZED),
        note(both, PaymentStatus.CONFIRMED),
        {**note(forged, PaymentStatus.CONFIRMED), "Amount": 99_999_900},  # token broken
        resigned(note(mismatched, PaymentStatus.CONFIRMED), Amount=99_999_900),
        note(declined, PaymentStatus.REJECTED),
        resigned({"TerminalKey": sandbox.terminal_key, "Status": "CONFIRMED"}),
    ]
    async with banking.sessions.begin() as batch:
        outcomes = await service.receive_notifications(batch, flows.bank_of(banking).gateway, group)
    assert [None if o is None else (o.status, o.code) for o in outcomes] == [
        None,
        None,
        None,
        None,
        None,
        (403, "bad_token"),
        (422, "notification_refused"),
        None,
        (422, "validation_error"),
    ]
    await flows.settle(banking, chain)

    session.expire_all()
    for deposit, expected in (
        (paid, ("CONFIRMED", True, 1)),
        (both, ("CONFIRMED", True, 1)),
        (forged, ("NEW", False, 0)),
        (mismatched, ("NEW", False, 0)),
        (declined, ("REJECTED", False, 0)),
    ):
        stored = await session.get(Deposit, uuid.UUID(deposit["id"]))
        assert stored is not None
        mints = await _mints(session, deposit["id"])
        assert (stored.status, stored.minted, len(mints)) == expected, deposit
    kept = await session.scalars(select(BankNotification.payment_id, BankNotification.status))
    assert sorted(kept.all()) == sorted(
        [
            paid["payment_id"],
            paid["payment_id"],
            both["payment_id"],
            both["payment_id"],
            declined["payment_id"],
        ]
    )
    alerts = await session.scalars(select(BankAlert.deposit_id))
    assert alerts.all() == [uuid.UUID(mismatched["id"])]


async def test_any_grouping_of_repeated_reordered_deliveries_mints_once(
    banking: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    """However a payment's deliveries (each status 1 to 4 times, in any order) fall into groups,
    and whatever else shares those groups, each deposit is confirmed and minted once."""
    import random

    sandbox = flows.sandbox_of(banking)
    gateway = flows.bank_of(banking).gateway
    deposits = await _open_deposits(client, session, 12)
    draw = random.Random(20261206)
    deliveries: list[dict[str, Any]] = []
    for deposit in deposits:
        payment = sandbox.payments[deposit["payment_id"]]
        for status in (PaymentStatus.AUTHORIZED, PaymentStatus.CONFIRMED):
            deliveries += [sandbox.notification(payment, status)] * draw.randint(1, 4)
    draw.shuffle(deliveries)
    while deliveries:
        size = draw.randint(1, 12)
        group, deliveries = deliveries[:size], deliveries[size:]
        async with banking.sessions.begin() as batch:
            outcomes = await service.receive_notifications(batch, gateway, group)
            assert outcomes == [None] * len(group)
    await flows.settle(banking, chain)

    await _confirmed_and_minted_once(session, deposits)
    stored_count = await session.scalar(select(func.count()).select_from(BankNotification))
    assert stored_count == 2 * len(deposits)


async def test_notifications_arriving_together_share_transactions(
    banking: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    """Sent at once over HTTP, 40 notifications are taken in fewer transactions than there
    are notifications, and each request is answered `OK` (or refused) for its own."""
    from sqlalchemy import event

    sandbox = flows.sandbox_of(banking)
    deposits = await _open_deposits(client, session, 20)
    bodies = _paid_lives(sandbox, deposits)
    forged = {**bodies[0], "Token": "0" * 64}
    began: list[object] = []

    def count(_connection: object) -> None:
        began.append(_connection)

    event.listen(banking.engine.sync_engine, "begin", count)
    try:
        answers = await asyncio.gather(
            *(client.post(NOTIFICATIONS, json=body) for body in [*bodies, forged])
        )
    finally:
        event.remove(banking.engine.sync_engine, "begin", count)
    assert [(a.status_code, a.text) for a in answers[:-1]] == [(200, "OK")] * len(bodies)
    assert answers[-1].status_code == 403
    assert len(began) < len(bodies), len(began)
    await flows.settle(banking, chain)
    session.expire_all()
    minted = await session.scalar(
        select(func.count())
        .select_from(Deposit)
        .where(Deposit.minted, Deposit.mint_key.is_not(None))
    )
    assert minted == len(deposits)


async def test_a_notification_that_fails_in_a_group_fails_alone(
    banking: Runtime,
    chain: ChainHandle,
    client: httpx.AsyncClient,
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When a group's transaction fails, its notifications are taken again one by one: the
    one that cannot be handled gets a 500 (the bank sends it again), the others `OK`."""
    sandbox = flows.sandbox_of(banking)
    deposits = await _open_deposits(client, session, 6)
    poison = deposits[2]["payment_id"]
    taken = service.receive_notifications

    async def failing(
        batch: AsyncSession, gateway: service.BankGateway, payloads: list[dict[str, Any]]
    ) -> list[Any]:
        if any(str(p.get("PaymentId")) == poison for p in payloads):
            raise RuntimeError("the database went away mid-group")
        return await taken(batch, gateway, payloads)

    monkeypatch.setattr(service, "receive_notifications", failing)
    bodies = [
        sandbox.notification(sandbox.payments[d["payment_id"]], PaymentStatus.CONFIRMED)
        for d in deposits
    ]
    # As the bank sees it over the network: an unhandled failure is a 500 answer.
    app = client._transport.app  # type: ignore[attr-defined]
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://bank") as bank:
        answers = await asyncio.gather(*(bank.post(NOTIFICATIONS, json=b) for b in bodies))
    assert [a.status_code for a in answers] == [200, 200, 500, 200, 200, 200]
    monkeypatch.setattr(service, "receive_notifications", taken)
    again = await client.post(NOTIFICATIONS, json=bodies[2])  # the bank sends it again
    assert (again.status_code, again.text) == (200, "OK")
    await flows.settle(banking, chain)
    session.expire_all()
    for deposit in deposits:
        assert len(await _mints(session, deposit["id"])) == 1


async def test_two_processes_taking_the_same_notifications_at_once_mint_each_deposit_once(
    banking: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    """Two desks (as two `mornet up` processes on one database) take the same notifications,
    in opposite orders, at the same time: their groups wait for each other's locks instead of
    deadlocking, and each deposit is confirmed and minted once."""
    from mornet.bank.runtime import NotificationDesk

    sandbox = flows.sandbox_of(banking)
    gateway = flows.bank_of(banking).gateway
    deposits = await _open_deposits(client, session, 10)
    bodies = _paid_lives(sandbox, deposits)
    one, other = (
        NotificationDesk(banking.sessions, gateway),
        NotificationDesk(banking.sessions, gateway),
    )
    try:
        outcomes = await asyncio.gather(
            *(one.receive(body) for body in bodies),
            *(other.receive(body) for body in reversed(bodies)),
        )
    finally:
        await one.close()
        await other.close()
    assert outcomes == [None] * (2 * len(bodies))
    await flows.settle(banking, chain)
    await _confirmed_and_minted_once(session, deposits)
