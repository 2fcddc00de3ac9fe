"""Our side of T-Bank's acquiring API v2: signed JSON requests over HTTPS (httpx). The same
adapter talks to the sandbox bank, which answers the same protocol inside the platform."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

import httpx
import structlog

from mornet.bank.protocol import PaymentStatus, PayoutStatus, sign
from mornet.errors import MornetError

log = structlog.get_logger(__name__)


class JsonAnswer(Protocol):
    """What the adapter reads of an HTTP answer."""

    @property
    def status_code(self) -> int: ...

    @property
    def text(self) -> str: ...

    def json(self) -> Any: ...


class JsonClient(Protocol):
    """How the adapter reaches the bank: an `httpx.AsyncClient` for T-Bank, or a caller of
    the app in this process for the sandbox bank (`mornet.web.inprocess.AppClient`)."""

    async def post(self, url: str, *, json: Any) -> JsonAnswer: ...

    async def aclose(self) -> None: ...


class BankUnavailable(MornetError):
    status = 503
    code = "bank_unavailable"

    def __init__(self, detail: str) -> None:
        super().__init__(f"the bank did not answer: {detail}")


class BankRefused(MornetError):
    status = 502
    code = "bank_refused"


@dataclass(frozen=True)
class CardForm:
    """The bank's card-binding form for a customer: the user binds a card there."""

    request_key: str
    url: str


@dataclass(frozen=True)
class Payout:
    payment_id: str
    status: PayoutStatus


@dataclass(frozen=True)
class PaymentCreated:
    payment_id: str
    payment_url: str
    status: PaymentStatus


def kopecks(amount: Decimal) -> int:
    return int(amount.scaleb(2).to_integral_exact())


class TBankAdapter:
    def __init__(self, base_url: str, terminal_key: str, password: str, client: JsonClient) -> None:
        self.base_url = base_url.rstrip("/")
        self.terminal_key = terminal_key
        self.password = password
        self.client = client

    async def _call(
        self, method: str, fields: dict[str, Any], *, api: str = "v2"
    ) -> dict[str, Any]:
        body = {"TerminalKey": self.terminal_key, **fields}
        body["Token"] = sign(body, self.password)
        try:
            response = await self.client.post(f"{self.base_url}/{api}/{method}", json=body)
            answer: dict[str, Any] = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise BankUnavailable(str(exc) or type(exc).__name__) from exc
        if not answer.get("Success") or str(answer.get("ErrorCode", "0")) != "0":
            detail = answer.get("Message") or answer.get("Details") or "refused"
            log.warning("bank.refused", method=method, code=answer.get("ErrorCode"))
            raise BankRefused(f"the bank refused {method}: {detail}")
        return answer

    async def init(
        self,
        *,
        order_id: str,
        amount: Decimal,
        description: str,
        customer_key: str,
        notification_url: str,
        success_url: str,
        fail_url: str,
    ) -> PaymentCreated:
        answer = await self._call(
            "Init",
            {
                "Amount": kopecks(amount),
                "OrderId": order_id,
                "Description": description,
                "CustomerKey": customer_key,
                "NotificationURL": notification_url,
                "SuccessURL": success_url,
                "FailURL": fail_url,
            },
        )
        return PaymentCreated(
            payment_id=str(answer["PaymentId"]),
            payment_url=str(answer["PaymentURL"]),
            status=PaymentStatus(answer.get("Status", "NEW")),
        )

    async def get_state(self, payment_id: str) -> PaymentStatus:
        answer = await self._call("GetState", {"PaymentId": payment_id})
        return PaymentStatus(answer["Status"])

    # Payouts to cards: T-Bank's e2c API (`/e2c/v2/...`), with its own customers and cards.

    async def add_customer(self, customer_key: str) -> None:
        """Open the user's account at the bank (idempotent: an existing one is fine)."""
        await self._call("AddCustomer", {"CustomerKey": customer_key}, api=E2C)

    async def add_card(self, customer_key: str) -> CardForm:
        answer = await self._call(
            "AddCard", {"CustomerKey": customer_key, "CheckType": "NO"}, api=E2C
        )
        return CardForm(request_key=str(answer["RequestKey"]), url=str(answer["PaymentURL"]))

    async def init_payout(
        self, *, order_id: str, amount: Decimal, customer_key: str, card_id: str
    ) -> Payout:
        answer = await self._call(
            "Init",
            {
                "OrderId": order_id,
                "Amount": kopecks(amount),
                "CustomerKey": customer_key,
                "CardId": card_id,
            },
            api=E2C,
        )
        return Payout(str(answer["PaymentId"]), PayoutStatus(answer.get("Status", "CHECKED")))

    async def pay(self, payment_id: str) -> PayoutStatus:
        """Send a checked payout (the bank pays a payment id once)."""
        answer = await self._call("Payment", {"PaymentId": payment_id}, api=E2C)
        return PayoutStatus(answer["Status"])

    async def payout_state(self, payment_id: str) -> PayoutStatus:
        answer = await self._call("GetState", {"PaymentId": payment_id}, api=E2C)
        return PayoutStatus(answer["Status"])

    async def payouts_of_order(self, order_id: str) -> list[Payout]:
        """The payouts the bank opened for our order (after a crash between Init and saving
        its answer, this finds the payout instead of opening a second one)."""
        answer = await self._call("CheckOrder", {"OrderId": order_id}, api=E2C)
        return [
            Payout(str(p["PaymentId"]), PayoutStatus(p["Status"]))
            for p in answer.get("Payments") or []
        ]


E2C = "e2c/v2"
