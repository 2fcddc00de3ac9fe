"""The sandbox bank: T-Bank's acquiring protocol answered inside the platform, so that the
embedded `mornet up` takes deposits with no bank account anywhere. It checks TerminalKey and
Token like the bank, keeps its payments in memory (a restart forgets them, as a test bank may),
shows a payment page (pay with the test card, or decline), and sends signed notifications that
it repeats until it gets `OK`. Tests can make it repeat, reorder and ignore `OK` on purpose."""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from mornet.bank.adapter import JsonClient
from mornet.bank.protocol import LINKCARD, PaymentStatus, PayoutStatus, sign, verify

log = structlog.get_logger(__name__)
PREFIX = "/sandbox/tbank"
TERMINAL_KEY = "MorNetSandbox"


_IDS = itertools.count(time.time_ns() // 1000)
"""The ids the sandbox hands out (payments, payouts, cards, card forms), shared by every
sandbox in the process. The platform stores them as unique, and the sandbox forgets its own at
a restart: counting up from the time in microseconds, a restarted sandbox starts past every id
it handed out before (it never hands out a million a second)."""


@dataclass
class SandboxPayment:
    payment_id: str
    order_id: str
    amount: int
    """Kopecks."""
    status: PaymentStatus
    notification_url: str
    success_url: str
    fail_url: str


@dataclass
class SandboxCard:
    card_id: str
    pan: str
    exp_date: str


@dataclass
class SandboxPayout:
    payment_id: str
    order_id: str
    amount: int
    customer_key: str
    card_id: str
    status: PayoutStatus


@dataclass
class SandboxBank:
    terminal_key: str
    password: str
    notifier: JsonClient | None = None
    """How notifications reach the platform (in-process: an ASGI transport to the app)."""
    duplicates: int = 1
    """Test hook: send every notification this many times."""
    reorder: bool = False
    """Test hook: send a payment's notifications newest first."""
    ignore_ok: int = 0
    """Test hook: act as if the first N `OK` answers were lost (so it sends again)."""
    confirm_checking: bool = False
    """Test hook: a paid payment is notified only up to CONFIRM_CHECKING; its confirmation
    is then known to GetState alone."""
    payout_outcome: PayoutStatus = PayoutStatus.COMPLETED
    """Test hook: how sent payouts end (COMPLETED, or REJECTED by the card's bank)."""
    hold_payouts: bool = False
    """Test hook: sent payouts stay CREDIT_CHECKING until `release_payouts()`."""
    notification_url: str = ""
    """The terminal's notification URL (card bindings and payouts are notified there)."""
    retry_seconds: float = 0.5
    attempts: int = 20
    payments: dict[str, SandboxPayment] = field(default_factory=dict)
    customers: dict[str, list[SandboxCard]] = field(default_factory=dict)
    card_forms: dict[str, str] = field(default_factory=dict)
    """Open card-binding forms: request key → customer key."""
    payouts: dict[str, SandboxPayout] = field(default_factory=dict)
    _ids: Any = field(default_factory=lambda: _IDS)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def _error(self, code: str, message: str) -> dict[str, Any]:
        return {"Success": False, "ErrorCode": code, "Message": message}

    def _check(self, body: dict[str, Any]) -> dict[str, Any] | None:
        if body.get("TerminalKey") != self.terminal_key:
            return self._error("202", "unknown terminal")
        if not verify(body, self.password):
            return self._error("204", "wrong token")
        return None

    def init(self, body: dict[str, Any]) -> dict[str, Any]:
        if (refused := self._check(body)) is not None:
            return refused
        amount = body.get("Amount")
        if not isinstance(amount, int) or amount <= 0 or not body.get("OrderId"):
            return self._error("9999", "Amount and OrderId are required")
        payment_id = str(next(self._ids))
        self.payments[payment_id] = SandboxPayment(
            payment_id=payment_id,
            order_id=str(body["OrderId"]),
            amount=amount,
            status=PaymentStatus.NEW,
            notification_url=str(body.get("NotificationURL") or ""),
            success_url=str(body.get("SuccessURL") or "/"),
            fail_url=str(body.get("FailURL") or "/"),
        )
        return {
            "Success": True,
            "ErrorCode": "0",
            "TerminalKey": self.terminal_key,
            "Status": PaymentStatus.NEW.value,
            "PaymentId": payment_id,
            "OrderId": body["OrderId"],
            "Amount": amount,
            "PaymentURL": f"{PREFIX}/pay/{payment_id}",
        }

    def get_state(self, body: dict[str, Any]) -> dict[str, Any]:
        if (refused := self._check(body)) is not None:
            return refused
        payment = self.payments.get(str(body.get("PaymentId")))
        if payment is None:
            return self._error("7", "unknown payment")
        return {
            "Success": True,
            "ErrorCode": "0",
            "TerminalKey": self.terminal_key,
            "Status": payment.status.value,
            "PaymentId": payment.payment_id,
            "OrderId": payment.order_id,
            "Amount": payment.amount,
        }

    def notification(self, payment: SandboxPayment, status: PaymentStatus) -> dict[str, Any]:
        success = status not in (PaymentStatus.REJECTED, PaymentStatus.DEADLINE_EXPIRED)
        body: dict[str, Any] = {
            "TerminalKey": self.terminal_key,
            "OrderId": payment.order_id,
            "Success": success,
            "Status": status.value,
            "PaymentId": int(payment.payment_id),
            "ErrorCode": "0" if success else "1051",
            "Amount": payment.amount,
            "CardId": 100500,
            "Pan": "430000******0777",
            "ExpDate": "1230",
        }
        body["Token"] = sign(body, self.password)
        return body

    async def _deliver(self, url: str, body: dict[str, Any]) -> bool:
        """Send one notification until the platform answers `OK` (or attempts run out)."""
        if self.notifier is None or not url:
            return False
        path = urlsplit(url).path
        for attempt in range(self.attempts):
            try:
                answer = await self.notifier.post(path, json=body)
                if answer.status_code == 200 and answer.text == "OK":
                    if self.ignore_ok > 0:
                        self.ignore_ok -= 1  # "lost" on the way back: send again
                    else:
                        return True
                else:
                    log.warning(
                        "sandbox_bank.not_ok", status=answer.status_code, answer=answer.text[:200]
                    )
            except httpx.HTTPError as exc:
                log.warning("sandbox_bank.notify_failed", error=str(exc))
            # As the bank does: again and again, waiting longer each time (up to 30 s).
            await asyncio.sleep(min(self.retry_seconds * 2 ** min(attempt, 10), 30))
        return False

    async def settle(self, payment_id: str, statuses: list[PaymentStatus]) -> None:
        """Move a payment through `statuses`, notifying the platform of each."""
        payment = self.payments[payment_id]
        bodies = []
        for status in statuses:
            payment.status = status
            bodies.extend([self.notification(payment, status)] * self.duplicates)
        if self.reorder:
            bodies.reverse()
        for body in bodies:
            await self._deliver(payment.notification_url, body)

    def settle_quietly(self, payment_id: str, status: PaymentStatus) -> None:
        """Record the outcome once the notifications sent so far are out (GetState sees it)."""

        async def later() -> None:
            await self.idle_except(asyncio.current_task())
            self.payments[payment_id].status = status

        task = asyncio.create_task(later())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def idle_except(self, current: asyncio.Task[Any] | None) -> None:
        while others := [t for t in self._tasks if t is not current]:
            await asyncio.gather(*others, return_exceptions=True)

    def settle_in_background(self, payment_id: str, statuses: list[PaymentStatus]) -> None:
        self._background(self.settle(payment_id, statuses))

    def _background(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _signed(self, body: dict[str, Any]) -> dict[str, Any]:
        return {**body, "Token": sign(body, self.password)}

    def _notify(self, body: dict[str, Any]) -> None:
        """Send a terminal notification (card binding, payout) in the background, repeated
        per the test hooks, until `OK`."""

        async def send() -> None:
            for _ in range(self.duplicates):
                await self._deliver(self.notification_url, self._signed(body))

        self._background(send())

    # e2c: customers, cards and payouts.

    def add_customer(self, body: dict[str, Any]) -> dict[str, Any]:
        if (refused := self._check(body)) is not None:
            return refused
        key = str(body.get("CustomerKey") or "")
        if not key:
            return self._error("9999", "CustomerKey is required")
        self.customers.setdefault(key, [])
        return {"Success": True, "ErrorCode": "0", "CustomerKey": key}

    def add_card(self, body: dict[str, Any]) -> dict[str, Any]:
        if (refused := self._check(body)) is not None:
            return refused
        key = str(body.get("CustomerKey") or "")
        if key not in self.customers:
            return self._error("7", "unknown customer")
        request_key = f"rk-{next(self._ids)}"
        self.card_forms[request_key] = key
        return {
            "Success": True,
            "ErrorCode": "0",
            "CustomerKey": key,
            "RequestKey": request_key,
            "PaymentURL": f"{PREFIX}/cards/{request_key}",
        }

    def bind_card(self, request_key: str, *, accept: bool) -> SandboxCard | None:
        """The user submitted the card form: the bank binds the test card (or refuses it)
        and notifies the terminal."""
        customer_key = self.card_forms.pop(request_key)
        card = None
        if accept:
            serial = next(self._ids)
            card = SandboxCard(str(serial), f"430000******{serial % 10000:04d}", "1230")
            self.customers[customer_key].append(card)
        self._notify(
            {
                "TerminalKey": self.terminal_key,
                "NotificationType": LINKCARD,
                "CustomerKey": customer_key,
                "RequestKey": request_key,
                "Success": accept,
                "Status": "COMPLETED" if accept else "REJECTED",
                "ErrorCode": "0" if accept else "1051",
                "CardId": card.card_id if card else "",
                "Pan": card.pan if card else "",
                "ExpDate": card.exp_date if card else "",
            }
        )
        return card

    def init_payout(self, body: dict[str, Any]) -> dict[str, Any]:
        if (refused := self._check(body)) is not None:
            return refused
        amount, order_id = body.get("Amount"), str(body.get("OrderId") or "")
        if not isinstance(amount, int) or amount <= 0 or not order_id:
            return self._error("9999", "Amount and OrderId are required")
        cards = self.customers.get(str(body.get("CustomerKey")), [])
        if str(body.get("CardId")) not in {card.card_id for card in cards}:
            return self._error("7", "no such card for this customer")
        if any(p.order_id == order_id for p in self.payouts.values()):
            return self._error("8", "this OrderId was used already")
        payout = SandboxPayout(
            payment_id=str(next(self._ids)),
            order_id=order_id,
            amount=amount,
            customer_key=str(body["CustomerKey"]),
            card_id=str(body["CardId"]),
            status=PayoutStatus.CHECKED,
        )
        self.payouts[payout.payment_id] = payout
        return {**self._payout_answer(payout), "CardId": payout.card_id}

    def _payout_answer(self, payout: SandboxPayout) -> dict[str, Any]:
        return {
            "Success": True,
            "ErrorCode": "0",
            "TerminalKey": self.terminal_key,
            "Status": payout.status.value,
            "PaymentId": payout.payment_id,
            "OrderId": payout.order_id,
            "Amount": payout.amount,
        }

    def pay(self, body: dict[str, Any]) -> dict[str, Any]:
        if (refused := self._check(body)) is not None:
            return refused
        payout = self.payouts.get(str(body.get("PaymentId")))
        if payout is None:
            return self._error("7", "unknown payment")
        if payout.status != PayoutStatus.CHECKED:
            return self._error("3", f"the payment is {payout.status.value}, not CHECKED")
        payout.status = PayoutStatus.CREDIT_CHECKING
        if not self.hold_payouts:
            self._finish_payout(payout)
        return self._payout_answer(payout)

    def _finish_payout(self, payout: SandboxPayout) -> None:
        payout.status = self.payout_outcome
        self._notify(
            {
                k: v
                for k, v in self._payout_answer(payout).items()
                if k not in ("Success", "ErrorCode")
            }
            | {
                "Success": payout.status == PayoutStatus.COMPLETED,
                "ErrorCode": "0" if payout.status == PayoutStatus.COMPLETED else "1051",
                "CardId": payout.card_id,
            }
        )

    def release_payouts(self) -> None:
        """End the payouts held in CREDIT_CHECKING (test hook `hold_payouts`)."""
        for payout in self.payouts.values():
            if payout.status == PayoutStatus.CREDIT_CHECKING:
                self._finish_payout(payout)

    def payout_state(self, body: dict[str, Any]) -> dict[str, Any]:
        if (refused := self._check(body)) is not None:
            return refused
        payout = self.payouts.get(str(body.get("PaymentId")))
        if payout is None:
            return self._error("7", "unknown payment")
        return self._payout_answer(payout)

    def check_order(self, body: dict[str, Any]) -> dict[str, Any]:
        if (refused := self._check(body)) is not None:
            return refused
        order_id = str(body.get("OrderId"))
        payouts = [p for p in self.payouts.values() if p.order_id == order_id]
        return {
            "Success": True,
            "ErrorCode": "0",
            "OrderId": order_id,
            "Payments": [
                {"PaymentId": p.payment_id, "Amount": p.amount, "Status": p.status.value}
                for p in payouts
            ],
        }

    async def idle(self) -> None:
        """Wait until every notification was delivered (tests)."""
        await self.idle_except(None)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Sandbox bank</title></head>
<body style="font-family:sans-serif;max-width:30rem;margin:3rem auto">
<h1>Sandbox bank</h1><p>A test payment: no real money moves.</p>
<p>Order <b>{order}</b>: <b>{amount} RUB</b></p>
<form method="post"><input type="hidden" name="action" value="pay">
<p>Card 4300 0000 0000 0777, 12/30</p><button>Pay {amount} RUB</button></form>
<form method="post"><input type="hidden" name="action" value="decline">
<button>Decline</button></form>
<form method="post"><input type="hidden" name="action" value="expire">
<button>Let the link expire</button></form></body></html>"""


CARD_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Sandbox bank: bind a card</title></head>
<body style="font-family:sans-serif;max-width:30rem;margin:3rem auto">
<h1>Sandbox bank</h1><p>Bind a test card for payouts: no real card is involved.</p>
<form method="post"><input type="hidden" name="action" value="bind">
<p>Card 4300 0000 0000 0777, 12/30</p><button>Bind this card</button></form>
<form method="post"><input type="hidden" name="action" value="decline">
<button>Refuse</button></form></body></html>"""


def sandbox_router(bank: SandboxBank, *, return_url: str = "/") -> APIRouter:
    router = APIRouter(prefix=PREFIX, include_in_schema=False)

    def e2c(method: str, answer: Any) -> None:
        async def call(request: Request) -> JSONResponse:
            return JSONResponse(answer(await request.json()))

        router.add_api_route(f"/e2c/v2/{method}", call, methods=["POST"])

    e2c("AddCustomer", bank.add_customer)
    e2c("AddCard", bank.add_card)
    e2c("Init", bank.init_payout)
    e2c("Payment", bank.pay)
    e2c("GetState", bank.payout_state)
    e2c("CheckOrder", bank.check_order)

    @router.get("/cards/{request_key}")
    async def card_page(request_key: str) -> Response:
        if request_key not in bank.card_forms:
            return HTMLResponse("<h1>No such card form</h1>", status_code=404)
        return HTMLResponse(CARD_PAGE)

    @router.post("/cards/{request_key}")
    async def bind(request_key: str, action: str = Form("bind")) -> Response:
        if request_key not in bank.card_forms:
            return HTMLResponse("<h1>This card form is not open</h1>", status_code=409)
        bank.bind_card(request_key, accept=action == "bind")
        return RedirectResponse(return_url, status_code=303)

    @router.post("/v2/Init")
    async def init(request: Request) -> JSONResponse:
        return JSONResponse(bank.init(await request.json()))

    @router.post("/v2/GetState")
    async def get_state(request: Request) -> JSONResponse:
        return JSONResponse(bank.get_state(await request.json()))

    @router.get("/pay/{payment_id}")
    async def payment_page(payment_id: str) -> Response:
        payment = bank.payments.get(payment_id)
        if payment is None:
            return HTMLResponse("<h1>No such payment</h1>", status_code=404)
        amount = f"{payment.amount // 100}.{payment.amount % 100:02d}"
        return HTMLResponse(PAGE.format(order=html.escape(payment.order_id), amount=amount))

    @router.post("/pay/{payment_id}")
    async def pay(payment_id: str, action: str = Form("pay")) -> Response:
        payment = bank.payments.get(payment_id)
        if payment is None or payment.status != PaymentStatus.NEW:
            return HTMLResponse("<h1>This payment is not open</h1>", status_code=409)
        payment.status = PaymentStatus.FORM_SHOWED  # a second click finds it taken
        if action == "pay" and bank.confirm_checking:
            bank.settle_in_background(
                payment_id, [PaymentStatus.AUTHORIZED, PaymentStatus.CONFIRM_CHECKING]
            )
            bank.settle_quietly(payment_id, PaymentStatus.CONFIRMED)
            return RedirectResponse(payment.success_url, status_code=303)
        if action == "pay":
            bank.settle_in_background(
                payment_id, [PaymentStatus.AUTHORIZED, PaymentStatus.CONFIRMED]
            )
            return RedirectResponse(payment.success_url, status_code=303)
        if action == "expire":
            # The payment link's deadline passes; the bank tells no one, GetState knows.
            payment.status = PaymentStatus.DEADLINE_EXPIRED
            return RedirectResponse(payment.fail_url, status_code=303)
        bank.settle_in_background(payment_id, [PaymentStatus.REJECTED])
        return RedirectResponse(payment.fail_url, status_code=303)

    return router
