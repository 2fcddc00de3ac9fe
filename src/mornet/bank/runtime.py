"""Opening the bank inside a process: T-Bank when configured, else the sandbox bank mounted in
the app and reached in-process through the same protocol."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import structlog
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mornet.bank import sandbox, service
from mornet.bank.adapter import JsonClient, TBankAdapter
from mornet.bank.service import BankGateway, reconcile_deposit, stale_deposits
from mornet.chain import service as chain
from mornet.config import ConfigurationError, RuntimeSecrets, Settings
from mornet.db import unit_of_work
from mornet.errors import MornetError
from mornet.web.inprocess import AppClient

INTERNAL = "http://mornet.internal"
log = structlog.get_logger(__name__)


class NotificationDesk:
    """Where the bank's notifications are taken, a group at a time: the notifications that
    arrive while one transaction runs share the next one (a group commit), and each request
    answers once the transaction holding its notification committed. Under load a
    notification costs a fraction of a transaction of its own; alone, it waits for nothing.

    A group whose transaction fails is taken again one notification per transaction, so a
    notification that cannot be handled fails on its own (the bank sends it again)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        gateway: BankGateway,
        *,
        group_limit: int = 256,
    ) -> None:
        self.sessions = sessions
        self.gateway = gateway
        self.group_limit = group_limit
        self._waiting: list[tuple[dict[str, Any], asyncio.Future[MornetError | None]]] = []
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def receive(self, payload: dict[str, Any]) -> MornetError | None:
        """Handle one notification: None once it is handled and committed (answer `OK`), or
        why it is refused (`service.receive_notifications`)."""
        if self._task is None or self._task.done():
            # Its own context: the worker outlives the request that happened to start it.
            self._task = asyncio.create_task(
                self._take_forever(), name="bank-notifications", context=contextvars.Context()
            )
        outcome: asyncio.Future[MornetError | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((payload, outcome))
        self._arrived.set()
        return await outcome

    async def _take_forever(self) -> None:
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            while self._waiting:
                group = self._waiting[: self.group_limit]
                del self._waiting[: self.group_limit]
                await self._take(group)

    async def _take(
        self, group: list[tuple[dict[str, Any], asyncio.Future[MornetError | None]]]
    ) -> None:
        try:
            async with unit_of_work(self.sessions) as session:
                outcomes = await service.receive_notifications(
                    session, self.gateway, [payload for payload, _ in group]
                )
        except Exception as exc:
            if len(group) > 1:
                for one in group:
                    await self._take([one])
                return
            log.exception("bank.notification_failed")
            _, waiting = group[0]
            if not waiting.done():  # its request may have gone (the bank hung up)
                waiting.set_exception(exc)
            return
        for (_, waiting), outcome in zip(group, outcomes, strict=True):
            if not waiting.done():
                waiting.set_result(outcome)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for _, waiting in self._waiting:  # not taken: their requests end unanswered
            waiting.cancel()
        self._waiting.clear()


@dataclass
class Bank:
    gateway: BankGateway
    sandbox: sandbox.SandboxBank | None
    clients: list[JsonClient]
    notifications: NotificationDesk
    payouts_due: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when a withdrawal is held: its payout starts without waiting for the next round."""
    mints_due: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when a deposit is confirmed: the minter mints what is due a moment later."""

    async def close(self) -> None:
        if self.sandbox is not None:
            await self.sandbox.close()
        await self.notifications.close()
        for client in self.clients:
            await client.aclose()


def sandbox_password(secrets: RuntimeSecrets) -> str:
    """The sandbox terminal's password: derived from the platform's secrets, so it is stable
    across restarts and secret without another file."""
    return hmac.new(secrets.jwt_secret.encode(), b"mornet sandbox bank", hashlib.sha256).hexdigest()


def open_bank(
    settings: Settings,
    secrets: RuntimeSecrets,
    app: FastAPI,
    sessions: async_sessionmaker[AsyncSession],
) -> Bank:
    def gateway(adapter: TBankAdapter) -> BankGateway:
        return BankGateway(
            adapter=adapter,
            terminal_key=adapter.terminal_key,
            password=adapter.password,
            public_url=settings.public_url.rstrip("/"),
            deposit_min=settings.bank_deposit_min,
            deposit_max=settings.bank_deposit_max,
            withdrawal_min=settings.bank_withdrawal_min,
            withdrawal_max=settings.bank_withdrawal_max,
        )

    if settings.bank_url:
        if not settings.bank_terminal_key or not settings.bank_password:
            raise ConfigurationError(
                "MORNET_BANK_URL needs MORNET_BANK_TERMINAL_KEY and MORNET_BANK_PASSWORD"
            )
        client = httpx.AsyncClient(timeout=15)
        adapter = TBankAdapter(
            settings.bank_url, settings.bank_terminal_key, settings.bank_password, client
        )
        theirs = gateway(adapter)
        return Bank(theirs, None, [client], NotificationDesk(sessions, theirs))
    # The sandbox: the app calls its own /sandbox/tbank routes, and the sandbox notifies the
    # app, both in-process (no port, no network), through the real protocol and the app's
    # whole request stack. A failure inside the app is an answer (500) to the sandbox, as
    # over a network: it sends the notification again rather than dying with the exception.
    internal = AppClient(app)
    terminal_key = settings.bank_terminal_key or sandbox.TERMINAL_KEY
    password = settings.bank_password or sandbox_password(secrets)
    bank = sandbox.SandboxBank(
        terminal_key=terminal_key,
        password=password,
        notifier=internal,
        notification_url=f"{INTERNAL}/api/bank/notifications/tbank",
    )
    # First among the app's routes: nothing else lives under its prefix, and the sandbox's
    # requests (two per deposit) then skip matching every route of the platform.
    app.router.routes[:0] = sandbox.sandbox_router(bank, return_url="/bank/withdrawals").routes
    adapter = TBankAdapter(sandbox.PREFIX, terminal_key, password, internal)
    ours = gateway(adapter)
    return Bank(ours, bank, [internal], NotificationDesk(sessions, ours))


async def reconcile_forever(
    sessions: async_sessionmaker[AsyncSession],
    gateway: BankGateway,
    *,
    quiet_for: timedelta,
    every_seconds: float = 60,
) -> None:
    """The reconciliation poller: `reconcile_round` every `every_seconds`."""
    while True:
        try:
            await reconcile_round(sessions, gateway, quiet_for=quiet_for)
        except Exception:
            log.exception("bank.reconcile_round_failed")
        await asyncio.sleep(every_seconds)


async def reconcile_round(
    sessions: async_sessionmaker[AsyncSession], gateway: BankGateway, *, quiet_for: timedelta
) -> int:
    """Ask the bank about every deposit without an outcome for `quiet_for`, each in its own
    transaction (one that fails now is asked again next round). Returns how many changed."""
    async with unit_of_work(sessions) as session:
        stale = await stale_deposits(session, quiet_for=quiet_for)
    changed = 0
    for deposit_id in stale:
        try:
            async with unit_of_work(sessions) as session:
                changed += await reconcile_deposit(session, gateway, deposit_id)
        except Exception:
            log.exception("bank.reconcile_failed", deposit=str(deposit_id))
    return changed


async def payouts_forever(
    sessions: async_sessionmaker[AsyncSession], bank: Bank, *, every_seconds: float
) -> None:
    """The payout worker: `payout_round` when a withdrawal is held, and every `every_seconds`
    for payouts still running (or interrupted by a crash)."""
    while True:
        bank.payouts_due.clear()
        try:
            await payout_round(sessions, bank.gateway)
        except Exception:
            log.exception("bank.payout_round_failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(bank.payouts_due.wait(), every_seconds)


async def payout_round(sessions: async_sessionmaker[AsyncSession], gateway: BankGateway) -> int:
    """Drive every held or paying withdrawal one step at the bank: mark it paying (committed),
    ask the bank to pay (no transaction open meanwhile), keep the answer. A crash anywhere in
    between is picked up by the next round (`service.ask_bank_to_pay` is safe to repeat).
    Returns how many were asked about."""
    async with unit_of_work(sessions) as session:
        due = await service.payable(session)
    for withdrawal_id in due:
        try:
            async with unit_of_work(sessions) as session:
                order = await service.claim_payout(session, withdrawal_id)
            if order is None:
                continue
            payment_id, status = await service.ask_bank_to_pay(gateway, order)
            async with unit_of_work(sessions) as session:
                await service.record_payout(session, withdrawal_id, payment_id, status)
        except Exception:
            log.exception("bank.payout_failed", withdrawal=str(withdrawal_id))
    return len(due)


async def mints_forever(
    sessions: async_sessionmaker[AsyncSession],
    handle: Callable[[], chain.ChainHandle | None],
    bank: Bank,
    *,
    window_seconds: float = 0.25,
    every_seconds: float = 5,
) -> None:
    """The minter: woken when deposits are confirmed, it waits `window_seconds` so that the
    deposits confirmed meanwhile share a chain transaction, then mints everything due (and
    every `every_seconds` regardless, so nothing waits on a lost wake-up)."""
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(bank.mints_due.wait(), every_seconds)
        await asyncio.sleep(window_seconds)
        bank.mints_due.clear()
        try:
            await mint_round(sessions, handle())
        except Exception:
            log.exception("bank.mint_round_failed")


async def mint_round(
    sessions: async_sessionmaker[AsyncSession], handle: chain.ChainHandle | None
) -> int:
    """Mint every confirmed deposit still due, in one transaction. Returns how many."""
    if handle is None:
        return 0
    async with unit_of_work(sessions) as session:
        return await service.mint_due(session, handle)


async def check_now(
    sessions: async_sessionmaker[AsyncSession], gateway: BankGateway
) -> tuple[int, int]:
    """What an operator's "check with the bank now" does: ask about every deposit without an
    outcome (no quiet period) and drive every payout in progress. Returns (deposits changed,
    payouts driven)."""
    changed = await reconcile_round(sessions, gateway, quiet_for=timedelta(0))
    return changed, await payout_round(sessions, gateway)
