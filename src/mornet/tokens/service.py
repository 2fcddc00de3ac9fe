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

from mornet.access import Actor
from mornet.chain import service as chain
from mornet.chain.contracts import MAX_BATCH
from mornet.chain.errors import ChainUnavailable
from mornet.chain.schemas import DECIMALS, OperationKind, OperationOut
from mornet.cost import service as cost
from mornet.db import utcnow
from mornet.errors import Conflict, NotFound, ValidationFailed
from mornet.households import service as households
from mornet.pagination import PageRequest
from mornet.tariffs import service as tariffs
from mornet.tokens import repository
from mornet.tokens.models import PlatformParameter, Settlement
from mornet.wallets import service as wallets
from mornet.wallets.service import Wallet

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
    return await move(
        session,
        handle,
        kind=kind,
        token=token,
        account=account,
        amount=amount,
        idempotency_key=idempotency_key,
        actor_id=actor_id,
    )


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


async def get_parameter(session: AsyncSession, name: str) -> PlatformParameter:
    parameter = await session.get(PlatformParameter, name)
    if parameter is None:
        raise NotFound(f"no parameter {name!r}", code="parameter_not_found")
    return parameter


async def set_parameter(
    session: AsyncSession, name: str, value: Decimal, *, actor_id: uuid.UUID | None
) -> PlatformParameter:
    parameter = await get_parameter(session, name)
    if value <= 0:
        raise ValidationFailed(f"{name} must be positive")
    parameter.value = str(value)
    parameter.updated_at = utcnow()
    parameter.updated_by = actor_id
    await session.flush()
    return parameter


async def gcm_for_cost(session: AsyncSession, cost_total: Decimal) -> Decimal:
    """GCM = cost_total / GCM_rate, exact to the token's 18 places (half-up)."""
    rate = Decimal((await get_parameter(session, GCM_RATE)).value)
    with localcontext() as context:
        context.prec = 80
        return (cost_total / rate).quantize(GCM_QUANTUM, rounding=ROUND_HALF_UP)


# Settlement: consumption turned into token moves, once per household and closed period.

SETTLEMENT_PREFIX = "settlement:"
TREASURY_FALLBACK = chain.keyless_address("mornet:treasury")
"""Where shortfall GCC goes until a treasury exists (a hash with no key, readable by anyone)."""


PLATFORM_ID = uuid.UUID(int=0)


@dataclass(frozen=True)
class SystemActor:
    """Settlement acts for the platform: it may read every household."""

    id: uuid.UUID = PLATFORM_ID
    is_admin: bool = True


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
    available: dict[tuple[str, str], int] = field(default_factory=dict)
    burns: dict[str, list[chain.Move]] = field(default_factory=lambda: defaultdict(list))
    payments: list[chain.Move] = field(default_factory=list)
    gcm: list[chain.Move] = field(default_factory=list)

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


def _units(amount: Decimal) -> int:
    return chain.to_base_units(amount) if amount > 0 else 0


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
    so a run killed anywhere is simply run again, and nothing is settled twice."""
    if handle is None:
        raise ChainUnavailable()
    await repository.lock_settlement_runs(session)
    run = _Run(handle)
    settled: list[Settlement] = []
    for household in await households.active_households(session):
        if len(settled) >= limit:
            break
        region = await tariffs.get_region(session, household.region_code)
        last = await repository.last_settled_end(session, household.id)
        periods = closed_periods(
            since=last or household.created_at,
            now=now,
            zone=ZoneInfo(region.timezone),
            length=length,
            grace=grace,
            limit=limit - len(settled),
        )
        if not periods:
            continue
        wallet = await wallets.wallet_of(session, household.owner_id)
        for start, end in periods:
            settled.append(await _settle(session, run, household.id, wallet, start, end, treasury))
    keys = await _request_moves(session, run)
    for settlement in settled:
        settlement.operation_keys = keys
    await session.flush()
    return settled


async def _settle(
    session: AsyncSession,
    run: _Run,
    household_id: uuid.UUID,
    wallet: Wallet,
    start: datetime,
    end: datetime,
    treasury: str,
) -> Settlement:
    calculation = await cost.calculate(
        session, actor=SystemActor(), household_id=household_id, start=start, end=end
    )
    consumed: dict[str, str] = {}
    burned: dict[str, str] = {}
    shortfall = Decimal(0)
    for line in calculation.lines:
        token, quantity = line["resource"], Decimal(line["quantity"])
        units = await run.take(session, wallet, token, _units(quantity))
        if units:
            run.burns[token].append(chain.Move(amount=units, sender=wallet.address))
        covered = chain.from_base_units(units)
        consumed[token], burned[token] = str(quantity), str(covered)
        shortfall += cost.cost_beyond(line, covered)
    paid_units = await run.take(session, wallet, "GCC", _units(shortfall))
    if paid_units:
        run.payments.append(chain.Move(amount=paid_units, sender=wallet.address, receiver=treasury))
    paid = chain.from_base_units(paid_units)
    gcm = await gcm_for_cost(session, calculation.cost_total)
    if gcm:
        run.gcm.append(chain.Move(amount=chain.to_base_units(gcm), receiver=wallet.address))
    settlement = Settlement(
        household_id=household_id,
        owner_id=wallet.user_id,
        period_start=start,
        period_end=end,
        calculation_id=calculation.id,
        cost_total=calculation.cost_total,
        consumed=consumed,
        burned=burned,
        shortfall_gcc=shortfall,
        paid_gcc=paid,
        arrears_gcc=shortfall - paid,
        gcm=str(gcm),
    )
    session.add(settlement)
    await session.flush()  # the unique (household, period) refuses a second settlement here
    return settlement


async def _request_moves(session: AsyncSession, run: _Run) -> list[str]:
    """One operation per token and kind (and per 256 accounts) for the whole run."""
    run_id = uuid.uuid4()
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
    session: AsyncSession, settlements: Sequence[Settlement]
) -> list[str]:
    """Each settlement's status, `confirmed` once every move of its run is on chain, `failed`
    if one failed, else `pending` (one query for all: a run's settlements share their moves)."""
    keys = {key for s in settlements for key in s.operation_keys}
    by_key = await chain.statuses_of(session, sorted(keys))

    def status(settlement: Settlement) -> str:
        statuses = {by_key.get(key) for key in settlement.operation_keys}
        if "failed" in statuses:
            return "failed"
        if statuses <= {"confirmed"}:
            return "confirmed"
        return "pending"

    return [status(s) for s in settlements]


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
