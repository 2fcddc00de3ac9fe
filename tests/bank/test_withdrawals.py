"""Withdrawals through the sandbox bank's payout protocol (e2c): bind a card on the bank's form,
hold the GCC in escrow on chain, let the bank pay the card, burn — or give back what the bank
would not pay. The reserves hold at every step, and a payout worker that dies anywhere neither
pays twice nor loses GCC."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.bank import service as bank
from mornet.bank.models import BankAlert, Withdrawal
from mornet.bank.protocol import LINKCARD, PayoutStatus, sign
from mornet.bank.runtime import payout_round
from mornet.chain.models import ChainOperation
from mornet.chain.service import ChainHandle
from mornet.db import unit_of_work
from mornet.runtime import Runtime
from mornet.tokens import service as tokens
from mornet.treasury import service as treasury
from mornet.wallets import service as wallets
from tests.bank import flows
from tests.cost.helpers import OPENED, household_with_use
from tests.factories import create_user, login, user_with_token

WEI = 10**18
NOTIFICATIONS = "/api/bank/notifications/tbank"


async def _reserves(client: httpx.AsyncClient, admin: dict[str, str]) -> dict[str, Any]:
    answer = await client.get("/api/admin/bank/reserves", headers=admin)
    assert answer.status_code == 200, answer.text
    report: dict[str, Any] = answer.json()
    assert report["ok"] is True, report
    return report


async def _withdraw(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    card: dict[str, Any],
    amount: str,
    key: str | None = None,
) -> httpx.Response:
    return await client.post(
        "/api/bank/withdrawals",
        json={"amount": amount, "card_id": card["id"], "idempotency_key": key or str(uuid.uuid4())},
        headers=headers,
    )


async def _gcc(chain: ChainHandle, session: AsyncSession, user_id: uuid.UUID) -> Decimal:
    wallet = await wallets.wallet_of(session, user_id)
    return Decimal(await chain.balance_of("GCC", wallet.address)) / WEI


async def _operations(session: AsyncSession, key_prefix: str) -> list[ChainOperation]:
    session.expire_all()
    rows = await session.scalars(
        select(ChainOperation).where(ChainOperation.idempotency_key.startswith(key_prefix))
    )
    return list(rows)


async def test_withdraw_to_a_bound_card_holds_pays_and_burns(
    banking: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, admin = await user_with_token(client, session, admin=True)
    user, headers = await user_with_token(client, session)
    await flows.paid_deposit(banking, chain, client, headers, "500")
    card = await flows.bound_card(banking, chain, client, headers)
    assert card["pan"].startswith("430000******")
    sandbox = flows.sandbox_of(banking)
    sandbox.hold_payouts = True

    opened = await _withdraw(client, headers, card, "200")
    assert opened.status_code == 201, opened.text
    withdrawal = opened.json()
    assert (withdrawal["status"], Decimal(withdrawal["amount"])) == ("holding", 200)
    # Held, not yet moved: the wallet's 500 are on chain, 200 of them spoken for.
    await _reserves(client, admin)
    short = await _withdraw(client, headers, card, "300.01")
    assert short.status_code == 422
    assert short.json()["error"]["code"] == "insufficient_balance"

    await flows.settle(banking, chain)
    paying = (await client.get(f"/api/bank/withdrawals/{withdrawal['id']}", headers=headers)).json()
    assert (paying["status"], paying["bank_status"]) == ("paying", "CREDIT_CHECKING")
    mid = await _reserves(client, admin)  # the bank is paying: GCC held, supply unchanged
    assert Decimal(mid["gcc_held_for_withdrawals"]) == 200
    assert Decimal(mid["gcc_total_supply"]) == 500
    assert await _gcc(chain, session, user.id) == 300

    sandbox.release_payouts()
    await flows.sandbox_of(banking).idle()
    paid = (await client.get(f"/api/bank/withdrawals/{withdrawal['id']}", headers=headers)).json()
    assert (paid["status"], paid["bank_status"]) == ("paid", "COMPLETED")
    burning = await _reserves(client, admin)  # paid, its burn still in flight
    assert Decimal(burning["gcc_burns_pending"]) == 200
    await flows.settle(banking, chain)

    done = await _reserves(client, admin)
    assert Decimal(done["paid_withdrawals"]) == 200
    assert Decimal(done["escrow_rub"]) == 300
    assert Decimal(done["gcc_total_supply"]) == 300
    assert Decimal(done["gcc_held_for_withdrawals"]) == 0
    assert await _gcc(chain, session, user.id) == 300
    payouts = [p for p in sandbox.payouts.values() if p.order_id == withdrawal["order_id"]]
    assert [(p.amount, p.status) for p in payouts] == [(20_000, PayoutStatus.COMPLETED)]
    assert len(await _operations(session, f"bank:withdrawal:{withdrawal['id']}:burn")) == 1
    listed = (await client.get("/api/bank/withdrawals", headers=headers)).json()
    assert [w["id"] for w in listed["items"]] == [withdrawal["id"]]


async def test_a_rejected_payout_gives_the_gcc_back(
    banking: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, admin = await user_with_token(client, session, admin=True)
    user, headers = await user_with_token(client, session)
    await flows.paid_deposit(banking, chain, client, headers, "100")
    card = await flows.bound_card(banking, chain, client, headers)
    flows.sandbox_of(banking).payout_outcome = PayoutStatus.REJECTED
    opened = (await _withdraw(client, headers, card, "60")).json()
    await flows.settle(banking, chain)

    seen = (await client.get(f"/api/bank/withdrawals/{opened['id']}", headers=headers)).json()
    assert (seen["status"], seen["bank_status"]) == ("returned", "REJECTED")
    assert await _gcc(chain, session, user.id) == 100
    report = await _reserves(client, admin)
    assert (Decimal(report["paid_withdrawals"]), Decimal(report["gcc_total_supply"])) == (0, 100)
    assert Decimal(report["gcc_held_for_withdrawals"]) == 0
    assert len(await _operations(session, f"bank:withdrawal:{opened['id']}:return")) == 1


async def test_withdrawals_are_idempotent_private_and_need_a_bound_card(
    banking: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, headers = await user_with_token(client, session)
    _, intruder = await user_with_token(client, session)
    await flows.paid_deposit(banking, chain, client, headers, "100")
    card = await flows.bound_card(banking, chain, client, headers)

    first = await _withdraw(client, headers, card, "40", key="pay-rent")
    again = await _withdraw(client, headers, card, "40", key="pay-rent")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    other_body = await _withdraw(client, headers, card, "41", key="pay-rent")
    assert other_body.status_code == 409
    count = await session.scalar(select(func.count()).select_from(Withdrawal))
    assert count == 1

    # Someone else's card, someone else's withdrawal: not found.
    stolen = await _withdraw(client, intruder, card, "10")
    assert (stolen.status_code, stolen.json()["error"]["code"]) == (404, "card_not_found")
    foreign = await client.get(f"/api/bank/withdrawals/{first.json()['id']}", headers=intruder)
    assert foreign.status_code == 404
    assert (await client.get("/api/bank/cards", headers=intruder)).json() == []
    # A card still at the bank's form is not bound yet.
    pending = (await client.post("/api/bank/cards", headers=headers)).json()
    unbound = await _withdraw(client, headers, pending, "10")
    assert (unbound.status_code, unbound.json()["error"]["code"]) == (422, "card_not_bound")
    for amount in ("9.99", "600000.01", "0", "1.001"):
        assert (await _withdraw(client, headers, card, amount)).status_code == 422, amount
    assert (await client.get("/api/bank/withdrawals")).status_code == 401


async def _held(
    banking: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> tuple[dict[str, str], dict[str, Any]]:
    """A withdrawal of 70 of 100 GCC whose hold is on chain, its payout not started."""
    _, headers = await user_with_token(client, session)
    await flows.paid_deposit(banking, chain, client, headers, "100")
    card = await flows.bound_card(banking, chain, client, headers)
    opened = (await _withdraw(client, headers, card, "70")).json()
    await flows.settle(banking, chain, payouts=False)
    seen = (await client.get(f"/api/bank/withdrawals/{opened['id']}", headers=headers)).json()
    assert seen["status"] == "held"
    return headers, seen


async def test_a_payout_worker_killed_after_init_neither_pays_twice_nor_loses_gcc(
    banking: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, admin = await user_with_token(client, session, admin=True)
    headers, withdrawal = await _held(banking, chain, client, session)
    gateway = flows.bank_of(banking).gateway
    # The worker claims the payout and opens it at the bank (Init) — then dies before it
    # can keep the bank's answer.
    async with unit_of_work(banking.sessions) as tx:
        order = await bank.claim_payout(tx, uuid.UUID(withdrawal["id"]))
    assert order is not None
    await gateway.adapter.init_payout(
        order_id=order.order_id,
        amount=order.amount,
        customer_key=order.customer_key,
        card_id=order.bank_card_id,
    )
    await _reserves(client, admin)

    # The next worker finds the bank's payout for the order instead of opening another.
    assert await payout_round(banking.sessions, gateway) == 1
    await flows.settle(banking, chain)
    seen = (await client.get(f"/api/bank/withdrawals/{withdrawal['id']}", headers=headers)).json()
    assert seen["status"] == "paid"
    sandbox = flows.sandbox_of(banking)
    payouts = [p for p in sandbox.payouts.values() if p.order_id == withdrawal["order_id"]]
    assert [(p.amount, p.status) for p in payouts] == [(7_000, PayoutStatus.COMPLETED)]
    report = await _reserves(client, admin)
    assert (Decimal(report["gcc_total_supply"]), Decimal(report["escrow_rub"])) == (30, 30)


async def test_a_payout_worker_killed_after_payment_does_not_pay_again(
    banking: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, admin = await user_with_token(client, session, admin=True)
    headers, withdrawal = await _held(banking, chain, client, session)
    gateway = flows.bank_of(banking).gateway
    sandbox = flows.sandbox_of(banking)
    sandbox.hold_payouts = True
    # This worker gets as far as sending the payout (Payment), then dies.
    async with unit_of_work(banking.sessions) as tx:
        order = await bank.claim_payout(tx, uuid.UUID(withdrawal["id"]))
    assert order is not None
    opened = await gateway.adapter.init_payout(
        order_id=order.order_id,
        amount=order.amount,
        customer_key=order.customer_key,
        card_id=order.bank_card_id,
    )
    assert await gateway.adapter.pay(opened.payment_id) == PayoutStatus.CREDIT_CHECKING

    await payout_round(banking.sessions, gateway)  # finds it in progress: does not pay again
    seen = (await client.get(f"/api/bank/withdrawals/{withdrawal['id']}", headers=headers)).json()
    assert (seen["status"], seen["payment_id"]) == ("paying", opened.payment_id)
    await _reserves(client, admin)
    sandbox.release_payouts()
    await flows.settle(banking, chain)
    seen = (await client.get(f"/api/bank/withdrawals/{withdrawal['id']}", headers=headers)).json()
    assert seen["status"] == "paid"
    assert [p.order_id for p in sandbox.payouts.values()].count(withdrawal["order_id"]) == 1
    assert Decimal((await _reserves(client, admin))["gcc_total_supply"]) == 30


async def test_card_binding_notifications_are_checked_and_never_keep_a_card_number(
    banking: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user, headers = await user_with_token(client, session)
    card = (await client.post("/api/bank/cards", headers=headers)).json()
    sandbox = flows.sandbox_of(banking)
    request_key = card["form_url"].rsplit("/", 1)[1]
    body = {
        "TerminalKey": sandbox.terminal_key,
        "NotificationType": LINKCARD,
        "CustomerKey": str(user.id),
        "RequestKey": request_key,
        "Success": True,
        "Status": "COMPLETED",
        "ErrorCode": "0",
        "CardId": "555001",
        "Pan": "4300000000000777",  # a full number: must not be kept
        "ExpDate": "1230",
    }

    def signed(**change: Any) -> dict[str, Any]:
        fields = {**body, **change}
        return {**fields, "Token": sign(fields, sandbox.password)}

    forged = {**signed(), "CardId": "666"}
    assert (await client.post(NOTIFICATIONS, json=forged)).status_code == 403
    for change in ({"RequestKey": "rk-unknown"}, {"CustomerKey": str(uuid.uuid4())}):
        refused = await client.post(NOTIFICATIONS, json=signed(**change))
        assert refused.status_code == 422, change
    accepted = await client.post(NOTIFICATIONS, json=signed())
    assert (accepted.status_code, accepted.text) == (200, "OK")
    [stored] = (await client.get("/api/bank/cards", headers=headers)).json()
    assert (stored["status"], stored["pan"]) == ("active", "430000******0777")
    alerts = await session.scalar(select(func.count()).select_from(BankAlert))
    assert alerts == 2


async def test_withdraw_through_the_pages_and_the_operators_bank_page(
    banking: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    from tests.web.test_pages import csrf_from, page_login

    user = await create_user(session)
    admin = await create_user(session, admin=True)
    await session.commit()
    user_id, user_email, admin_email = user.id, user.email, admin.email
    headers = await login(client, user_email)
    await flows.paid_deposit(banking, chain, client, headers, "150")
    await page_login(client, user_email)

    page = await client.get("/bank/withdrawals")
    assert "Bind a card first" in page.text
    to_the_bank = await client.post("/bank/cards", data={"csrf_token": csrf_from(page)})
    assert to_the_bank.status_code == 303
    form_url = to_the_bank.headers["location"]
    assert form_url.startswith("/sandbox/tbank/cards/")
    back = await client.post(form_url, data={"action": "bind"})
    assert back.headers["location"] == "/bank/withdrawals"
    await flows.settle(banking, chain)

    page = await client.get("/bank/withdrawals")
    assert f"Your account at the bank: <code>{user_id}</code>" in page.text
    [card_id] = re.findall(r'<option value="([0-9a-f-]{36})"', page.text)
    key = re.search(r'name="request_key" value="([^"]+)"', page.text)
    assert key is not None
    fields = {"card_id": card_id, "request_key": key.group(1), "csrf_token": csrf_from(page)}
    too_much = await client.post("/bank/withdrawals", data={**fields, "amount": "150,01"})
    assert too_much.status_code == 422
    assert "not enough GCC" in too_much.text
    done = await client.post("/bank/withdrawals", data={**fields, "amount": "100,50"})
    assert done.status_code == 303
    twice = await client.post("/bank/withdrawals", data={**fields, "amount": "100,50"})
    assert twice.status_code == 303  # the same form sent again: still one withdrawal
    waiting = await client.get("/bank/withdrawals")
    assert 'hx-trigger="every 2s"' in waiting.text  # the status updates itself
    await flows.settle(banking, chain)
    page = await client.get("/bank/withdrawals")
    assert page.text.count("100.50 RUB") == 1
    assert ">paid<" in page.text
    assert 'hx-trigger="every 2s"' not in page.text
    assert await _gcc(chain, session, user_id) == Decimal("49.50")

    assert (await client.get("/admin/bank")).status_code == 403
    client.cookies.clear()
    await page_login(client, admin_email)
    operator = await client.get("/admin/bank")
    assert operator.status_code == 200
    assert 'Reserves:\n    <span class="badge active">ok</span>' in operator.text
    assert "100.50 RUB" in operator.text
    assert "150.00 RUB" in operator.text
    checked = await client.post("/admin/bank/check", data={"csrf_token": csrf_from(operator)})
    assert checked.status_code == 200
    assert "Asked the bank: 0 deposit(s) changed, 0 payout(s) driven." in checked.text


async def test_graphql_bind_card_withdraw_and_withdrawals(
    banking: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    from tests.test_graphql import error_codes, gql

    _, headers = await user_with_token(client, session)
    _, other = await user_with_token(client, session)
    await flows.paid_deposit(banking, chain, client, headers, "50")
    started = await gql(client, "mutation { bindCard { id status formUrl } }", headers)
    assert started["data"]["bindCard"]["status"] == "PENDING"
    await client.post(started["data"]["bindCard"]["formUrl"], data={"action": "bind"})
    await flows.settle(banking, chain)
    cards = (await gql(client, "{ bankCards { id status pan } }", headers))["data"]["bankCards"]
    assert [c["status"] for c in cards] == ["ACTIVE"]

    withdraw = """mutation($card: UUID!, $amount: Decimal!) {
        withdraw(amount: $amount, cardId: $card, idempotencyKey: "gql-1") { id status amount } }"""
    made = await gql(client, withdraw, headers, card=cards[0]["id"], amount="20")
    assert "errors" not in made, made
    assert made["data"]["withdraw"]["status"] == "HOLDING"
    listed = await gql(client, "{ withdrawals { id status } }", headers)
    made_id = made["data"]["withdraw"]["id"]
    assert listed["data"]["withdrawals"] == [{"id": made_id, "status": "HOLDING"}]
    assert (await gql(client, "{ withdrawals { id } }", other))["data"]["withdrawals"] == []
    stolen = await gql(client, withdraw, other, card=cards[0]["id"], amount="20")
    assert error_codes(stolen) == ["card_not_found"]
    again = withdraw.replace("gql-1", "gql-2")
    short = await gql(client, again, headers, card=cards[0]["id"], amount="31")
    assert error_codes(short) == ["insufficient_balance"]


async def _settle_on_2_november(runtime: Runtime, chain: ChainHandle) -> None:
    async with unit_of_work(runtime.sessions) as tx:
        await tokens.settle_due(
            tx,
            chain,
            now=datetime(2026, 11, 2, 12, tzinfo=UTC),
            length="day",
            grace=timedelta(minutes=15),
            treasury=treasury.FALLBACK_ADDRESS,
        )


async def test_arrears_are_kept_back_from_withdrawals_and_paid_first(
    banking: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    used = await household_with_use(client, session, banking, opened=OPENED)
    await _settle_on_2_november(banking, chain)  # 1 November: 5.63 RUB, nothing to pay it
    await flows.paid_deposit(banking, chain, client, used.headers, "20")
    card = await flows.bound_card(banking, chain, client, used.headers)

    too_much = await _withdraw(client, used.headers, card, "15")
    assert too_much.status_code == 422
    assert too_much.json()["error"]["code"] == "arrears_first"
    assert "14.37 GCC can be withdrawn" in too_much.json()["error"]["message"]
    assert (await _withdraw(client, used.headers, card, "14")).status_code == 201

    await _settle_on_2_november(banking, chain)  # the next run pays the arrears
    await flows.settle(banking, chain)
    async with banking.sessions() as fresh:
        assert await tokens.arrears_of_owner(fresh, used.owner_id) == 0
    assert await _gcc(chain, session, used.owner_id) == Decimal("0.37")
