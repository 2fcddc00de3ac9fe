"""What a running process holds: settings, resolved secrets, the database, the chain, the
telemetry roles. The composition root: it satisfies the protocols each layer declares for what
it needs from the running platform (`dependencies.Platform`, identity's `IdentityHost`,
chain's `ChainHost`)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from mornet import outbox
from mornet.analytics import service as analytics
from mornet.bank import service as bank_service
from mornet.bank.events import (
    AlertRaised,
    DepositConfirmed,
    DepositRefunded,
    WithdrawalPaid,
    WithdrawalRejected,
)
from mornet.bank.runtime import Bank, mints_forever, payouts_forever, reconcile_forever
from mornet.bus import Bus, open_bus
from mornet.chain.balances import BalanceBook
from mornet.chain.client import ChainClient
from mornet.chain.events import OperationFinished
from mornet.chain.node import LOCAL_CHAIN_ID, LocalNode
from mornet.chain.service import ChainHandle, ensure_deployed
from mornet.chain.submitter import Submitter
from mornet.changes import Changes
from mornet.config import RuntimeSecrets, Settings, load_runtime_secrets
from mornet.crypto import WalletCipher
from mornet.db import (
    create_engine,
    create_sessionmaker,
    set_after_commit,
    unit_of_work,
    utcnow,
)
from mornet.identity import service as identity
from mornet.identity.events import UserBlockChanged, UserRegistered
from mornet.identity.service import AccessCache, TokenSettings
from mornet.identity.throttle import Throttle
from mornet.market import runtime as market_runtime
from mornet.outbox import DomainEvent, Relay, Subscription
from mornet.simulation import Simulation, simulate_households
from mornet.tariffs.events import TariffPublished
from mornet.telemetry import service as telemetry_service
from mornet.telemetry.events import MessageDeadLettered
from mornet.telemetry.runtime import Telemetry, start_telemetry
from mornet.tokens import service as tokens_service
from mornet.tokens.events import SettlementRan, TokensAdjusted
from mornet.treasury import service as treasury_service
from mornet.treasury.events import ParameterSet, ProposalChanged, TreasuryCreated
from mornet.wallets import service as wallets

log = structlog.get_logger(__name__)

LOGGED_EVENTS: tuple[type[DomainEvent], ...] = (
    UserRegistered,
    UserBlockChanged,
    TariffPublished,
    ParameterSet,
    TreasuryCreated,
    ProposalChanged,
    TokensAdjusted,
    SettlementRan,
    DepositConfirmed,
    WithdrawalPaid,
    AlertRaised,
    MessageDeadLettered,
    OperationFinished,
)
"""The events the event log keeps (each says how it reads there: `log_line`)."""


def settle_heap() -> None:
    """Call once a long-running process has started up. What start-up built lives as long as
    the process: out of the collector's sight, a full collection no longer walks it (it
    paused every request for ~0.2 s, and a settlement run for ~0.1 s). The work that follows
    allocates many short-lived objects; collecting the young generation every 700
    allocations (the default) runs it several times per request."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 50)


@dataclass
class Runtime:
    settings: Settings
    secrets: RuntimeSecrets
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    cipher: WalletCipher
    chain: ChainHandle | None = None
    telemetry: Telemetry | None = None
    node: LocalNode | None = None
    simulation: Simulation | None = None
    bus: Bus | None = None
    relay: Relay | None = None
    bank: Bank | None = None
    changes: Changes | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    login_throttle: Throttle = field(init=False)
    registration_throttle: Throttle = field(init=False)
    access: AccessCache = field(init=False)

    def __post_init__(self) -> None:
        self.access = AccessCache(self.changes)
        window_s = self.settings.throttle_window_minutes * 60
        self.login_throttle = Throttle(self.settings.login_failure_limit, window_s)
        self.registration_throttle = Throttle(self.settings.registration_limit, window_s)

    @property
    def tokens(self) -> TokenSettings:
        return TokenSettings(
            secret=self.secrets.jwt_secret,
            ttl=timedelta(minutes=self.settings.access_token_ttl_minutes),
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        secrets = load_runtime_secrets(settings)
        url = settings.resolved_database_url()
        engine = create_engine(url)
        changes = Changes(url)
        return cls(
            settings=settings,
            secrets=secrets,
            engine=engine,
            sessions=create_sessionmaker(engine, changes),
            cipher=WalletCipher(secrets.wallet_master_key),
            changes=changes,
        )

    def event_bus(self) -> Bus:
        """The process's message bus (RabbitMQ when configured), opened on first use."""
        if self.bus is None:
            self.bus = open_bus(self.settings)
        return self.bus

    def subscriptions(self) -> list[Subscription[Any]]:
        """Every context's event consumers, wired here (the composition root) so that no
        context needs to know who listens to it. Keep each consumer's name stable: it keys
        the events it has processed."""

        async def mint_for_deposit(session: AsyncSession, event: DepositConfirmed) -> None:
            # The minter batches the deposits confirmed about the same time.
            if self.bank is not None:
                set_after_commit(session, self.bank.mints_due)

        async def burn_for_refund(session: AsyncSession, event: DepositRefunded) -> None:
            await bank_service.burn_for_refund(session, self.chain, event)

        async def burn_paid_withdrawal(session: AsyncSession, event: WithdrawalPaid) -> None:
            await bank_service.burn_paid_withdrawal(session, self.chain, event)

        async def return_withdrawal(session: AsyncSession, event: WithdrawalRejected) -> None:
            await bank_service.return_rejected_withdrawal(session, self.chain, event)

        async def operation_finished(session: AsyncSession, event: OperationFinished) -> None:
            follow_up = await bank_service.operation_finished(
                session,
                operation_id=event.operation_id,
                key=event.idempotency_key,
                confirmed=event.status == "confirmed",
                error=event.error,
            )
            if self.bank is not None and follow_up == bank_service.Next.PAY_OUT:
                set_after_commit(session, self.bank.payouts_due)
            elif self.bank is not None and follow_up == bank_service.Next.MINT:
                set_after_commit(session, self.bank.mints_due)

        async def treasury_operation_finished(
            session: AsyncSession, event: OperationFinished
        ) -> None:
            if treasury_service.is_treasury_key(event.idempotency_key):
                await treasury_service.advance(session, self.chain)

        async def log_event(session: AsyncSession, event: DomainEvent) -> None:
            await analytics.log_event(session, event)

        logged: list[Subscription[Any]] = [
            Subscription(f"analytics.log.{event_type.topic}", event_type, log_event)
            for event_type in LOGGED_EVENTS
        ]
        return [
            *logged,
            Subscription(
                "treasury.chain-operations", OperationFinished, treasury_operation_finished
            ),
            Subscription("bank.mint-deposits", DepositConfirmed, mint_for_deposit),
            Subscription("bank.burn-refunds", DepositRefunded, burn_for_refund),
            Subscription("bank.burn-paid-withdrawals", WithdrawalPaid, burn_paid_withdrawal),
            Subscription("bank.return-rejected-withdrawals", WithdrawalRejected, return_withdrawal),
            Subscription("bank.chain-operations", OperationFinished, operation_finished),
        ]

    async def start_events(
        self,
        subscriptions: Sequence[Subscription[Any]] | None = None,
        *,
        run_relay: bool = True,
    ) -> Relay:
        """Subscribe the event consumers, then relay recorded events to the bus (consumers
        first: the in-process bus hands an event only to those already listening)."""
        events = self.event_bus()
        for subscription in self.subscriptions() if subscriptions is None else subscriptions:
            await outbox.subscribe(events, self.sessions, subscription)
        self.relay = Relay(self.sessions, events)
        if run_relay:
            self._tasks.append(asyncio.create_task(self.relay.run_forever(), name="outbox-relay"))
        return self.relay

    def start_bank_reconciler(self) -> None:
        """Ask the bank about deposits that wait too long for an outcome (GetState), and run
        the payouts of held withdrawals."""
        if self.bank is None:
            return
        self._tasks.append(
            asyncio.create_task(
                mints_forever(self.sessions, lambda: self.chain, self.bank), name="bank-minter"
            )
        )
        self._tasks.append(
            asyncio.create_task(
                payouts_forever(
                    self.sessions, self.bank, every_seconds=self.settings.bank_payout_seconds
                ),
                name="bank-payouts",
            )
        )
        quiet_for = timedelta(minutes=self.settings.bank_reconcile_minutes)
        self._tasks.append(
            asyncio.create_task(
                reconcile_forever(
                    self.sessions,
                    self.bank.gateway,
                    quiet_for=quiet_for,
                    every_seconds=min(60.0, quiet_for.total_seconds()),
                ),
                name="bank-reconciler",
            )
        )

    def start_market(self) -> None:
        """The market's batcher: trades' tokens go on chain a moment after they are made."""
        self._tasks.append(
            asyncio.create_task(
                market_runtime.batches_forever(self.sessions, lambda: self.chain),
                name="market-batcher",
            )
        )

    def start_analytics(self, *, every_seconds: float = 60) -> None:
        """Keep the analytics series current: the last hours' points computed again now and
        then (late readings and late confirmations land in past hours)."""
        self._tasks.append(
            asyncio.create_task(self._analytics_forever(every_seconds), name="analytics")
        )

    async def refresh_analytics(self, *, hours: int = 3) -> int:
        now = utcnow()
        async with unit_of_work(self.sessions) as session:
            return await analytics.refresh(
                session,
                self.chain,
                start=now - timedelta(hours=hours),
                end=now + timedelta(hours=1),
            )

    async def _analytics_forever(self, every_seconds: float) -> None:
        while True:
            try:
                await self.refresh_analytics()
            except Exception:
                log.exception("analytics.refresh_failed")
            await asyncio.sleep(every_seconds)

    def start_treasury(self, *, every_seconds: float = 2) -> None:
        """Take the treasury through its creation and its proposals' executions (the chain
        operations' events do it too; this catches up after a restart), and keep the
        governed parameters equal to the chain's."""
        self._tasks.append(
            asyncio.create_task(self._treasury_forever(every_seconds), name="treasury")
        )

    async def _treasury_forever(self, every_seconds: float) -> None:
        synced = False
        while True:
            try:
                async with unit_of_work(self.sessions) as session:
                    await treasury_service.advance(session, self.chain)
                    if not synced:
                        await treasury_service.sync_parameters(session, self.chain)
                        synced = True
            except Exception:
                log.exception("treasury.advance_failed")
            await asyncio.sleep(every_seconds)

    async def create_demo_treasury(self, operators: int = 3, threshold: int = 2) -> list[str]:
        """`mornet up --simulate`: demo operators (operator1@example.org … with the password
        `operatorN-password`) owning a 2-of-3 treasury, unless one exists. Returns their emails."""
        emails = [f"operator{n}@example.org" for n in range(1, operators + 1)]
        async with unit_of_work(self.sessions) as session:
            for n, email in enumerate(emails, start=1):
                existing = await identity.user_by_email(session, email)
                user = existing or await identity.ensure_admin(
                    session,
                    email=email,
                    password=f"operator{n}-password",
                    full_name=f"Operator {n}",
                )
                await wallets.open_missing_wallets(session, user_ids=[user.id], cipher=self.cipher)
            if self.chain is not None and not await treasury_service.is_governed(session):
                await treasury_service.create(
                    session, self.chain, owners=emails, threshold=threshold, actor_id=None
                )
        return emails

    def start_retention(self, *, every_seconds: float = 3600) -> None:
        """Delete raw readings older than `readings_keep_days` now and then (their hourly
        use stays)."""
        if self.settings.readings_keep_days > 0:
            self._tasks.append(
                asyncio.create_task(self._prune_forever(every_seconds), name="retention")
            )

    async def _prune_forever(self, every_seconds: float) -> None:
        while True:
            try:
                async with unit_of_work(self.sessions) as session:
                    deleted = await telemetry_service.prune_readings(
                        session, keep_days=self.settings.readings_keep_days
                    )
                if deleted:
                    log.info("telemetry.readings_pruned", deleted=deleted)
            except Exception:
                log.exception("telemetry.prune_failed")
            await asyncio.sleep(every_seconds)

    def start_settlement(self, *, every_seconds: float = 60) -> None:
        """Settle closed household periods every `every_seconds` (each run is idempotent)."""
        self._tasks.append(
            asyncio.create_task(self._settle_forever(every_seconds), name="settlement")
        )

    async def settle_once(self) -> int:
        """One settlement run in its own transaction. Returns how many periods it settled."""
        settings = self.settings
        async with unit_of_work(self.sessions) as session:
            settled = await tokens_service.settle_due(
                session,
                self.chain,
                now=utcnow(),
                length=settings.settlement_period,
                grace=timedelta(minutes=settings.settlement_grace_minutes),
                treasury=await treasury_service.revenue_address(
                    session, self.chain, settings.treasury_address
                ),
            )
        return len(settled)

    async def _settle_forever(self, every_seconds: float) -> None:
        while True:
            try:
                if self.chain is not None and (count := await self.settle_once()):
                    log.info("settlement.run", settled=count)
            except Exception:
                log.exception("settlement.run_failed")
            await asyncio.sleep(every_seconds)

    async def open_missing_wallets(self) -> int:
        """Users who predate wallets get one (run at start)."""
        async with unit_of_work(self.sessions) as session:
            return await wallets.open_missing_wallets(
                session, user_ids=await identity.all_user_ids(session), cipher=self.cipher
            )

    async def start_chain(
        self, *, rpc_url: str | None = None, run_submitter: bool = True
    ) -> ChainHandle:
        """Connect to the configured chain (or start the local node), deploy the contracts on
        first start, and run the submitter in the background."""
        url = rpc_url or self.settings.chain_rpc_url
        if url is None:
            self.node = LocalNode(
                port=self.settings.anvil_port,
                state_file=self.settings.data_dir / "chain" / "anvil-state.json",
                binary=self.settings.anvil_bin,
            )
            await asyncio.to_thread(self.node.start)
            url = self.node.rpc_url
        client = await ChainClient.connect(url, self.secrets.chain_operator_key)
        if client.chain_id == LOCAL_CHAIN_ID:
            await client.fund_operator_on_dev_chain()
        async with unit_of_work(self.sessions) as session:
            contracts = await ensure_deployed(session, client)
        submitter = Submitter(
            self.sessions, client, contracts, confirmations=self.settings.chain_confirmations
        )
        self.chain = ChainHandle(client=client, contracts=contracts, submitter=submitter)
        # Shown balances, forgotten by the watcher's logs and by the submitter's receipts.
        book = BalanceBook(self.chain.balances_of, contracts=contracts)
        self.chain.book = submitter.book = book
        self._tasks.append(
            asyncio.create_task(book.watch_forever(client.w3), name="chain-balance-book")
        )
        if run_submitter:
            self._tasks.append(asyncio.create_task(submitter.run_forever(), name="chain-submitter"))
        log.info(
            "chain.ready",
            chain_id=client.chain_id,
            rpc_url=client.public_rpc_url,
            contracts=contracts,
        )
        return self.chain

    async def start_telemetry(
        self, *, simulate: int = 0, simulate_interval_s: float = 10
    ) -> Telemetry:
        """Bus consumer, broker (embedded unless MORNET_MQTT_URL), gateway, and N simulated
        households when asked."""
        self.telemetry = await start_telemetry(self.settings, self.sessions, self.event_bus())
        if simulate:
            self.simulation = await simulate_households(
                self.settings,
                self.sessions,
                self.cipher,
                count=simulate,
                interval_s=simulate_interval_s,
                handle=self.chain,
            )
        return self.telemetry

    async def close(self) -> None:
        if self.changes is not None:
            await self.changes.close()
        if self.simulation is not None:
            await self.simulation.close()
            self.simulation = None
        if self.telemetry is not None:
            await self.telemetry.close()
            self.telemetry = None
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self.bus is not None:
            await self.bus.close()
            self.bus = None
        if self.bank is not None:
            await self.bank.close()
            self.bank = None
        if self.chain is not None:
            await self.chain.client.close()
            self.chain = None
        if self.node is not None:
            await asyncio.to_thread(self.node.stop)
            self.node = None
        await self.engine.dispose()
