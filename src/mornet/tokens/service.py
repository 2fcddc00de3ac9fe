"""Token engine rules: admin/internal mint and burn through the outbox, and GCM."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from mornet import outbox
from mornet.access import Actor
from mornet.chain import service as chain
from mornet.chain.contracts import MAX_BATCH
from mornet.chain.errors import ChainUnavailable
from mornet.chain.schemas import DECIMALS, OperationKind, OperationOut
from mornet.changes import topics_of
from mornet.cost import service as cost
from mornet.db import utcnow
from mornet.errors import Conflict, NotFound, ValidationFailed
from mornet.households import service as households
from mornet.pagination import PageRequest
from mornet.tariffs import service as tariffs
from mornet.telemetry import service as telemetry
from mornet.tokens import repository
from mornet.tokens.events import SettlementRan, TokensAdjusted
from mornet.tokens.models import (
    ArrearsPayment,
    Settlement,
    SettlementAdjustment,
    SettlementRun,
)
from mornet.treasury import service as treasury
from mornet.wallets import service as wallets
from mornet.wallets.service import Wallet

SETTLEMENT_TOPICS = topics_of(Settlement, SettlementAdjustment, ArrearsPayment)
"""What settlements show (and which moves settle which periods) changes only when these move."""

GCM_RATE = "gcm_rate"
GCM_QUANTUM = Decimal(1).scaleb(-DECIMALS)


BANK_BACKED = frozenset({"GCC"})
"""Tokens that exist only against roubles held by the bank."""


class GccIsBankBacked(Conflict):
    code = "gcc_is_bank_backed"

    def __init__(self) -> None:
        super().__init__(
            "GCC is minted only for a confirmed bank deposit and burned only for a payout or "
            "a refund; an operator adjusts E, H, W and GCM"
        )


async def operator_move(
    session: AsyncSession,
    handle: chain.ChainHandle | None,
    *,
    kind: OperationKind,
    token: str,
    account: str,
    amount: Decimal,
    idempotency_key: str,
    actor_id: uuid.UUID | None,
) -> tuple[OperationOut, bool]:
    """An operator's mint or burn: an adjustment of E, H, W or GCM. Never GCC, whose supply
    must equal the roubles the bank holds."""
    if token in BANK_BACKED:
        raise GccIsBankBacked()
    out, created = await move(
        session,
        handle,
        kind=kind,
        token=token,
        account=account,
        amount=amount,
        idempotency_key=idempotency_key,
        actor_id=actor_id,
    )
    if created:
        await outbox.record(
            session,
            TokensAdjusted(
                operation_id=out.id,
                kind=str(kind),
                token=token,
                account=account,
                amount=amount,
                by=actor_id,
            ),
        )
    return out, created


async def move(
    session: AsyncSession,
    handle: chain.ChainHandle | None,
    *,
    kind: OperationKind,
    token: str,
    account: str,
    amount: Decimal,
    idempotency_key: str,
    actor_id: uuid.UUID | None,
) -> tuple[OperationOut, bool]:
    """Mint to or burn from one account, exactly once per idempotency key."""
    if handle is None:
        raise ChainUnavailable()
    if kind not in (OperationKind.MINT, OperationKind.BURN):
        raise ValidationFailed("only mint and burn are token engine moves")
    address = await wallets.resolve_address(session, account)
    units = chain.to_base_units(amount)
    single = (
        chain.Move(amount=units, receiver=address)
        if kind == OperationKind.MINT
        else chain.Move(amount=units, sender=address)
    )
    operation, created = await chain.request(
        session,
        handle,
        token=token,
        kind=kind,
        moves=[single],
        idempotency_key=f"token:{idempotency_key}",
        requested_by=actor_id,
    )
    return OperationOut.of(operation), created


async def gcm_rate(session: AsyncSession) -> Decimal:
    return await treasury.parameter_value(session, GCM_RATE)


def gcm_for_cost(cost_total: Decimal, rate: Decimal) -> Decimal:
    """GCM = cost_total / GCM_rate, exact to the token's 18 places (half-up)."""
    with localcontext() as context:
        context.prec = 80
        return (cost_total / rate).quantize(GCM_QUANTUM, rounding=ROUND_HALF_UP)


# Settlement: consumption turned into token moves, once per household and closed period.

SETTLEMENT_PREFIX = "settlement:"


PLATFORM_ID = uuid.UUID(int=0)


@dataclass(frozen=True)
class SystemActor:
    """Settlement acts for the platform: it may read every household."""

    id: uuid.UUID = PLATFORM_ID
    is_admin: bool = True


Period = tuple[datetime, datetime]


def _period_of(
    moment: datetime, zone: ZoneInfo, length: Literal["day", "hour"]
) -> tuple[datetime, datetime]:
    """The period (a local day, or an hour) that contains `moment`, as UTC bounds."""
    local = moment.astimezone(zone)
    if length == "hour":
        start = local.replace(minute=0, second=0, microsecond=0)
        return start.astimezone(UTC), (start + timedelta(hours=1)).astimezone(UTC)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    # The next local midnight (a day of 23 or 25 hours where the clocks change).
    next_midnight = datetime.combine(start.date() + timedelta(days=1), time(0), tzinfo=zone)
    return start.astimezone(UTC), next_midnight.astimezone(UTC)


def closed_periods(
    *,
    since: datetime,
    now: datetime,
    zone: ZoneInfo,
    length: Literal["day", "hour"],
    grace: timedelta,
    limit: int,
) -> list[tuple[datetime, datetime]]:
    """The periods from the one containing `since` that ended at least `grace` before `now`."""
    periods: list[tuple[datetime, datetime]] = []
    start, end = _period_of(since, zone, length)
    while end + grace <= now and len(periods) < limit:
        periods.append((start, end))
        start, end = _period_of(end, zone, length)
    return periods


@dataclass
class _Run:
    """What one settlement run moves, gathered across households before it is requested."""

    handle: chain.ChainHandle
    treasury: str
    gcm_rate: Decimal
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    available: dict[tuple[str, str], int] = field(default_factory=dict)
    burns: dict[str, list[chain.Move]] = field(default_factory=lambda: defaultdict(list))
    payments: list[chain.Move] = field(default_factory=list)
    gcm: list[chain.Move] = field(default_factory=list)
    paid: Decimal = Decimal(0)
    adjustments: int = 0
    arrears_payments: int = 0
    owed_after: dict[uuid.UUID, Decimal] = field(default_factory=dict)

    async def take(self, session: AsyncSession, wallet: Wallet, token: str, wanted: int) -> int:
        """Up to `wanted` base units of the wallet's spendable `token`, reserved for this run."""
        key = (wallet.address, token)
        if key not in self.available:
            self.available[key] = max(
                await wallets.available(session, self.handle, wallet, token), 0
            )
        taken = min(wanted, self.available[key])
        self.available[key] -= taken
        return taken

    async def pay(self, session: AsyncSession, wallet: Wallet, owed: Decimal) -> Decimal:
        """Move up to `owed` GCC from the wallet to the treasury; what was paid."""
        units = await self.take(session, wallet, "GCC", _units(owed))
        if units:
            self.payments.append(
                chain.Move(amount=units, sender=wallet.address, receiver=self.treasury)
            )
        paid = chain.from_base_units(units)
        self.paid += paid
        return paid


def _units(amount: Decimal) -> int:
    return chain.to_base_units(amount) if amount > 0 else 0


SETTLED_TOKENS = ("E", "H", "W", "GCC")
"""What a settlement may take from a wallet: prepaid units, and GCC for the rest."""

LATE_MARGIN = timedelta(minutes=10)
"""How far before the last settlement late readings are looked for again: a reading committed
while that settlement ran may carry an earlier stamp. Looking twice is harmless, since an
adjustment is the difference from what was settled so far."""


@dataclass(frozen=True)
class _Late:
    """What re-rating a settled period found that was not settled for it yet."""

    adjusts: Settlement
    resource: str
    quantity: Decimal
    cost: Decimal
    calculation_id: uuid.UUID


async def settle_due(
    session: AsyncSession,
    handle: chain.ChainHandle | None,
    *,
    now: datetime,
    length: Literal["day", "hour"],
    grace: timedelta,
    treasury: str,
    limit: int = 500,
) -> list[Settlement]:
    """Settle every household's closed periods not settled yet (up to `limit` in this run), in
    the caller's transaction: the settlement rows (unique per household and period) and the
    chain moves (batched across households, keyed by the run) commit together or not at all,
    so a run killed anywhere is simply run again, and nothing is settled twice. Arrears are
    paid first, from whatever GCC their owners hold now, even when no period is due."""
    if handle is None:
        raise ChainUnavailable()
    await repository.lock_settlement_runs(session)
    run = _Run(handle, treasury, await gcm_rate(session))
    owed = await repository.outstanding_arrears(session)
    latest = await repository.latest_settlements(session)
    zones: dict[str, ZoneInfo] = {}
    due: list[tuple[households.SettledHousehold, Settlement | None, list[Period]]] = []
    paying: list[tuple[households.SettledHousehold, Settlement]] = []
    count = 0
    for household in await households.active_households(session):
        if count >= limit:
            break
        if household.region_code not in zones:
            region = await tariffs.get_region(session, household.region_code)
            zones[household.region_code] = ZoneInfo(region.timezone)
        last = latest.get(household.id)
        periods = closed_periods(
            since=last.period_end if last else household.created_at,
            now=now,
            zone=zones[household.region_code],
            length=length,
            grace=grace,
            limit=limit - count,
        )
        if periods:
            due.append((household, last, periods))
            count += len(periods)
        elif last is not None and owed.get(household.id, Decimal(0)) > 0:
            paying.append((household, last))
    # Every due period rated at once, then settled household by household, oldest first.
    calculations = iter(
        await cost.calculate_many(
            session,
            [
                cost.RatingRequest(household.id, household.region_code, start, end)
                for household, _, periods in due
                for start, end in periods
            ],
            created_by=PLATFORM_ID,
        )
    )
    settled_before = [last for _, last, _ in due if last is not None]
    changes = (
        await telemetry.changes_since(
            session,
            [last.household_id for last in settled_before],
            since=min(last.created_at for last in settled_before) - LATE_MARGIN,
        )
        if settled_before
        else {}
    )
    owners: dict[uuid.UUID, Wallet] = {}
    for household in [h for h, _, _ in due] + [h for h, _ in paying]:
        await _wallet(session, owners, household.owner_id)
    # Arrears are held GCC (so nothing else spends what arrives first); the run pays them, so
    # for the run that hold is spendable.
    owner_of = {h.id: h.owner_id for h, _, _ in due} | {h.id: h.owner_id for h, _ in paying}
    kept_for_arrears: dict[uuid.UUID, int] = defaultdict(int)
    for household_id, amount in owed.items():
        if amount > 0 and household_id in owner_of:
            kept_for_arrears[owner_of[household_id]] += _units(amount)
    spendable = await wallets.available_of(session, handle, owners.values(), SETTLED_TOKENS)
    for wallet in owners.values():
        spendable[(wallet.address, "GCC")] += kept_for_arrears[wallet.user_id]
    run.available = {pair: max(units, 0) for pair, units in spendable.items()}
    settled: list[Settlement] = []
    for household, last, periods in due:
        wallet = await _wallet(session, owners, household.owner_id)
        late = (
            await _late_readings(session, last, changes.get(household.id, []))
            if last is not None
            else []
        )
        balance = owed.get(household.id, Decimal(0))
        for start, end in periods:
            settlement = await _settle(
                session, run, wallet, start, end, balance, late, next(calculations)
            )
            balance, late = settlement.arrears_gcc, []
            settled.append(settlement)
        run.owed_after[household.id] = balance
    for household, last in paying:
        wallet = await _wallet(session, owners, household.owner_id)
        await _pay_arrears(session, run, wallet, last, owed[household.id])
    for household_id, amount in run.owed_after.items():
        await wallets.hold_at(
            session,
            user_id=owner_of[household_id],
            token="GCC",
            units=_units(amount),
            reference=arrears_hold(household_id),
        )
    if settled or run.payments:
        keys = await _request_moves(session, run)
        for settlement in settled:
            settlement.operation_keys = keys
        ran = SettlementRun(
            id=run.id,
            ran_at=utcnow(),
            settled=len(settled),
            households=len(run.owed_after),
            adjustments=run.adjustments,
            arrears_payments=run.arrears_payments,
            paid_gcc=run.paid,
            arrears_gcc=sum((owed for owed in run.owed_after.values() if owed > 0), Decimal(0)),
            operation_keys=keys,
        )
        session.add(ran)
        await outbox.record(
            session,
            SettlementRan(
                run_id=ran.id,
                settled=ran.settled,
                households=ran.households,
                paid_gcc=ran.paid_gcc,
                arrears_gcc=ran.arrears_gcc,
            ),
        )
    await session.flush()
    return settled


def arrears_hold(household_id: uuid.UUID) -> str:
    """The wallet hold that keeps a household's arrears back from everything but settlement."""
    return f"arrears:{household_id}"


async def _wallet(
    session: AsyncSession, owners: dict[uuid.UUID, Wallet], owner_id: uuid.UUID
) -> Wallet:
    if owner_id not in owners:
        owners[owner_id] = await wallets.wallet_of(session, owner_id)
    return owners[owner_id]


async def _pay_arrears(
    session: AsyncSession, run: _Run, wallet: Wallet, last: Settlement, owed: Decimal
) -> None:
    """Pay a household's arrears from the GCC its owner holds now (as much as there is)."""
    paid = await run.pay(session, wallet, owed)
    if not paid:
        return
    session.add(
        ArrearsPayment(
            household_id=last.household_id, settlement_id=last.id, amount=paid, run_id=run.id
        )
    )
    run.arrears_payments += 1
    run.owed_after[last.household_id] = owed - paid


async def _late_readings(
    session: AsyncSession, last: Settlement, changes: list[tuple[datetime, datetime]]
) -> list[_Late]:
    """Readings that reached periods already settled (`changes`: hours and when they changed):
    each such period is rated again and compared with what was settled for it so far (its
    settlement and earlier adjustments)."""
    household_id = last.household_id
    since = last.created_at - LATE_MARGIN
    hours = sorted({hour for hour, at in changes if at > since and hour < last.period_end})
    if not hours:
        return []
    found: list[_Late] = []
    for target in await repository.settlements_covering(session, household_id, hours):
        rerated = await cost.calculate(
            session,
            actor=SystemActor(),
            household_id=household_id,
            start=target.period_start,
            end=target.period_end,
        )
        settled_so_far = await _settled_so_far(session, target)
        now_rated = {
            line["resource"]: (Decimal(line["quantity"]), Decimal(line["cost"]))
            for line in rerated.lines
        }
        for resource in sorted(set(settled_so_far) | set(now_rated)):
            quantity, price = now_rated.get(resource, (Decimal(0), Decimal(0)))
            was_quantity, was_cost = settled_so_far.get(resource, (Decimal(0), Decimal(0)))
            if (quantity, price) != (was_quantity, was_cost):
                found.append(
                    _Late(target, resource, quantity - was_quantity, price - was_cost, rerated.id)
                )
    return found


async def _settled_so_far(
    session: AsyncSession, settlement: Settlement
) -> dict[str, tuple[Decimal, Decimal]]:
    """Per resource, the quantity and cost settled for a period: its own, plus adjustments."""
    so_far: dict[str, tuple[Decimal, Decimal]] = {}
    if settlement.calculation_id is not None:
        calculation = await cost.get_calculation(
            session, actor=SystemActor(), calculation_id=settlement.calculation_id
        )
        for line in calculation.lines:
            so_far[line["resource"]] = (Decimal(line["quantity"]), Decimal(line["cost"]))
    for adjustment in await repository.adjustments_of(session, settlement.id):
        quantity, price = so_far.get(adjustment.resource, (Decimal(0), Decimal(0)))
        so_far[adjustment.resource] = (
            quantity + Decimal(adjustment.quantity),
            price + adjustment.cost,
        )
    return so_far


async def _settle(
    session: AsyncSession,
    run: _Run,
    wallet: Wallet,
    start: datetime,
    end: datetime,
    owed_before: Decimal,
    late: list[_Late],
    calculation: cost.Calculation,
) -> Settlement:
    household_id = calculation.household_id
    settlement_id = uuid.uuid4()
    consumed: dict[str, str] = {}
    burned: dict[str, str] = {}
    shortfall = Decimal(0)
    for line in calculation.lines:
        token, quantity = line["resource"], Decimal(line["quantity"])
        covered = await _burn(session, run, wallet, token, quantity)
        consumed[token], burned[token] = str(quantity), str(covered)
        shortfall += cost.cost_beyond(line, covered)
    adjustment_gcc = Decimal(0)
    for found in late:
        covered = await _burn(session, run, wallet, found.resource, found.quantity)
        # Units not covered by prepaid tokens pay their share of the difference in GCC; a
        # difference that gives use back is a credit.
        uncovered = (
            cost.prorated(found.cost, found.quantity - covered, found.quantity)
            if found.quantity > 0
            else found.cost
        )
        adjustment_gcc += uncovered
        session.add(
            SettlementAdjustment(
                settlement_id=settlement_id,
                adjusts_id=found.adjusts.id,
                resource=found.resource,
                quantity=str(found.quantity),
                cost=found.cost,
                burned=str(covered),
                calculation_id=found.calculation_id,
            )
        )
        run.adjustments += 1
    due = owed_before + shortfall + adjustment_gcc
    paid = await run.pay(session, wallet, due) if due > 0 else Decimal(0)
    priced = calculation.cost_total + sum((found.cost for found in late), Decimal(0))
    gcm = gcm_for_cost(max(priced, Decimal(0)), run.gcm_rate)
    if gcm:
        run.gcm.append(chain.Move(amount=chain.to_base_units(gcm), receiver=wallet.address))
    settlement = Settlement(
        id=settlement_id,
        household_id=household_id,
        owner_id=wallet.user_id,
        period_start=start,
        period_end=end,
        calculation_id=calculation.id,
        cost_total=calculation.cost_total,
        consumed=consumed,
        burned=burned,
        shortfall_gcc=shortfall,
        adjustment_gcc=adjustment_gcc,
        arrears_before_gcc=owed_before,
        paid_gcc=paid,
        arrears_gcc=due - paid,
        gcm=str(gcm),
        run_id=run.id,
    )
    session.add(settlement)  # the unique (household, period) refuses a second one at the flush
    return settlement


async def _burn(
    session: AsyncSession, run: _Run, wallet: Wallet, token: str, quantity: Decimal
) -> Decimal:
    """Burn up to `quantity` of the wallet's prepaid `token` in this run; what was covered."""
    units = await run.take(session, wallet, token, _units(quantity))
    if units:
        run.burns[token].append(chain.Move(amount=units, sender=wallet.address))
    return chain.from_base_units(units)


async def _request_moves(session: AsyncSession, run: _Run) -> list[str]:
    """One operation per token and kind (and per 256 accounts) for the whole run."""
    run_id = run.id
    batches: list[tuple[str, OperationKind, list[chain.Move]]] = [
        (token, OperationKind.BURN, moves) for token, moves in sorted(run.burns.items())
    ]
    batches.append(("GCC", OperationKind.TRANSFER, run.payments))
    batches.append(("GCM", OperationKind.MINT, run.gcm))
    keys = []
    for token, kind, moves in batches:
        for index in range(0, len(moves), MAX_BATCH):
            key = f"{SETTLEMENT_PREFIX}{run_id}:{kind}:{token}:{index // MAX_BATCH}"
            await chain.request(
                session,
                run.handle,
                token=token,
                kind=kind,
                moves=moves[index : index + MAX_BATCH],
                idempotency_key=key,
            )
            keys.append(key)
    return keys


async def settlement_statuses(
    session: AsyncSession, settled: Sequence[Settlement | SettlementRun]
) -> list[str]:
    """Each settlement's (or run's) status, `confirmed` once every move of its run is on
    chain, `failed` if one failed, else `pending` (one query for all: a run's settlements
    share their moves)."""
    keys = {key for s in settled for key in s.operation_keys}
    by_key = await chain.statuses_of(session, sorted(keys))

    return [chain.group_status(by_key, s.operation_keys) for s in settled]


async def failed_operations(session: AsyncSession, runs: Sequence[SettlementRun]) -> list[int]:
    """How many of each run's chain operations failed."""
    by_key = await chain.statuses_of(session, sorted({k for r in runs for k in r.operation_keys}))
    return [sum(by_key.get(k) == "failed" for k in run.operation_keys) for run in runs]


async def settlement_runs(
    session: AsyncSession, page: PageRequest
) -> tuple[Sequence[SettlementRun], int]:
    """Settlement runs, newest first (operators)."""
    return await repository.runs_page(session, page)


async def adjustments_in(
    session: AsyncSession, settlements: Sequence[Settlement]
) -> dict[uuid.UUID, list[SettlementAdjustment]]:
    """The adjustments each settlement carries."""
    carried: dict[uuid.UUID, list[SettlementAdjustment]] = defaultdict(list)
    for adjustment in await repository.adjustments_carried_by(session, [s.id for s in settlements]):
        carried[adjustment.settlement_id].append(adjustment)
    return carried


async def periods_settled_by(
    session: AsyncSession, owner_id: uuid.UUID, operation_keys: Sequence[str]
) -> dict[str, list[datetime]]:
    """For each settlement move among `operation_keys`, the starts of the owner's periods it
    settles (a wallet's history labels its burns, GCC payments and GCM with them)."""
    runs: dict[uuid.UUID, list[str]] = defaultdict(list)
    for key in operation_keys:
        if key.startswith(SETTLEMENT_PREFIX):
            runs[uuid.UUID(key.removeprefix(SETTLEMENT_PREFIX).split(":")[0])].append(key)
    periods: dict[str, list[datetime]] = {}
    for run_id, start in await repository.periods_of_runs(session, owner_id, list(runs)):
        for key in runs[run_id]:
            periods.setdefault(key, []).append(start)
    return periods


async def arrears_of_owner(session: AsyncSession, owner_id: uuid.UUID) -> Decimal:
    """GCC the owner's households owe: kept back from withdrawals, since arrears are paid
    first from the GCC the owner receives."""
    owned = await households.household_ids_of_owner(session, owner_id)
    if not owned:
        return Decimal(0)
    owed = await repository.outstanding_arrears(session, owned)
    return sum((amount for amount in owed.values() if amount > 0), Decimal(0))


async def settlements_of(
    session: AsyncSession, *, actor: Actor, household_id: uuid.UUID, page: PageRequest
) -> tuple[Sequence[Settlement], int]:
    await households.get_household(session, actor=actor, household_id=household_id)
    return await repository.settlements_page(session, household_id, page)


async def get_settlement(
    session: AsyncSession, *, actor: Actor, household_id: uuid.UUID, settlement_id: uuid.UUID
) -> Settlement:
    await households.get_household(session, actor=actor, household_id=household_id)
    settlement = await repository.settlement(session, settlement_id)
    if settlement is None or settlement.household_id != household_id:
        raise NotFound("no such settlement", code="settlement_not_found")
    return settlement
