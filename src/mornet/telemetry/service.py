"""Telemetry rules: accept or dead-letter a message, store readings once, keep hourly use."""

from __future__ import annotations

import itertools
import json
import re
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mornet import outbox
from mornet.access import Actor
from mornet.bus import Unprocessable
from mornet.changes import topics_of
from mornet.db import scaled_units, utcnow
from mornet.errors import ValidationFailed, describe
from mornet.households import service as households
from mornet.resources import Resource
from mornet.tariffs import service as tariffs
from mornet.telemetry import repository
from mornet.telemetry.events import MessageDeadLettered
from mornet.telemetry.models import (
    METER,
    PLUG,
    DeadLetter,
    DeviceCursor,
    HourlyConsumption,
    Reading,
    source_of,
)
from mornet.telemetry.schemas import (
    COUNTER_SCALE,
    NormalisedBatch,
    NormalisedReading,
    SignedReadings,
    UnitBatch,
    UnitReading,
    WireMessage,
)
from mornet.wire.telemetry import (
    MAX_PAYLOAD_BYTES,
    household_of_topic,
    signature_valid,
    signed_by,
    signed_part,
)

USE_TOPICS = topics_of(Reading, DeviceCursor, HourlyConsumption)
"""What a household's readings and use look like changes only when these move."""

DEAD_LETTER_KEEP_BYTES = 64 * 1024
FUTURE_TOLERANCE = timedelta(minutes=5)

# The most a household can physically use, per resource: a step between two readings of one
# counter above `floor + rate * hours between them` is a faulty device or a forgery, never
# use. 100 kW of electricity or heat is several times any household connection; 10 m³/h of
# water is a fire hose.
STEP_RATE_PER_HOUR: dict[str, Decimal] = {
    Resource.ELECTRICITY: Decimal(100),
    Resource.HEAT: Decimal(100),
    Resource.WATER: Decimal(10),
}
STEP_FLOOR: dict[str, Decimal] = {
    Resource.ELECTRICITY: Decimal(10),
    Resource.HEAT: Decimal(10),
    Resource.WATER: Decimal(1),
}


HOUR = timedelta(hours=1)


class ImplausibleStep(Unprocessable):
    """A counter step no household can make; the message goes to the dead letters."""


class Rejected(Exception):
    """A message the pipeline will not take; the reason goes to the dead-letter store."""

    def __init__(self, reason: str, *, agent_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.agent_id = agent_id


AgentLookup = Callable[[uuid.UUID], Awaitable[households.GatewayAgent | None]]
"""An agent's credentials by its id (the gateway's keeps them for a few seconds)."""


async def accept_message(topic: str, payload: bytes, *, lookup: AgentLookup) -> UnitBatch:
    """Authenticate, validate and normalise one MQTT message, or raise `Rejected`."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise Rejected(f"payload of {len(payload)} bytes exceeds the limit of {MAX_PAYLOAD_BYTES}")
    topic_household = household_of_topic(topic)
    if topic_household is None:
        raise Rejected(f"topic {topic!r} is not mornet/<household_id>/telemetry")
    signed = await _signed_as_sent(payload, lookup)
    if signed is not None:
        agent, body = signed
        try:
            wire: SignedReadings = SignedReadings.model_validate_json(body)
        except ValidationError as exc:
            raise _invalid(exc, agent.id) from exc
        if wire.agent_id != agent.id:
            raise Rejected("agent_id differs from the signer's", agent_id=str(agent.id))
    else:
        agent, wire = await _signed_canonically(payload, lookup)
    agent_id = str(agent.id)
    if str(agent.household_id) != topic_household:
        raise Rejected(
            f"agent {agent_id} belongs to another household than the topic's {topic_household}",
            agent_id=agent_id,
        )
    latest_allowed = utcnow() + FUTURE_TOLERANCE
    for reading in wire.readings:
        if reading.ts > latest_allowed:
            raise Rejected(
                f"reading {reading.device_id}#{reading.seq} is from the future "
                f"({reading.ts.isoformat()})",
                agent_id=agent_id,
            )
    readings = [r.in_units() for r in wire.readings]
    try:
        _check_steps_within(readings)
    except ImplausibleStep as exc:
        raise Rejected(str(exc), agent_id=agent_id) from exc
    return UnitBatch(agent.household_id, agent.id, readings)


_SIGNED_AGENT = re.compile(rb'\{"agent_id":"([0-9a-f-]{36})"')


async def _signed_as_sent(
    payload: bytes, lookup: AgentLookup
) -> tuple[households.GatewayAgent, bytes] | None:
    """(the agent, the bytes it signed) when the payload is laid out as agents write it
    (`signed_payload`) and its signature holds: its JSON is then neither parsed twice nor
    written again. None sends the payload the general way."""
    parts = signed_part(payload)
    if parts is None:
        return None
    found = _SIGNED_AGENT.match(parts[0])
    if found is None:
        return None
    body, signature = parts
    agent = await lookup(uuid.UUID(found[1].decode()))
    if agent is None or not signed_by(body, signature, agent.verifier):
        return None
    return agent, body


async def _signed_canonically(
    payload: bytes, lookup: AgentLookup
) -> tuple[households.GatewayAgent, SignedReadings]:
    """The agent and its readings, the signature checked over the canonical JSON."""
    try:
        message: Any = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Rejected(f"payload is not JSON: {exc}") from exc
    if not isinstance(message, dict):
        raise Rejected("payload is not a JSON object")
    try:
        agent_id = uuid.UUID(str(message.get("agent_id")))
    except ValueError:
        raise Rejected("agent_id is missing or not a UUID") from None
    agent = await lookup(agent_id)
    if agent is None:
        raise Rejected(
            f"agent {agent_id} is unknown, revoked, or its owner is blocked",
            agent_id=str(agent_id),
        )
    if not signature_valid(message, agent.verifier):
        raise Rejected(
            "the Ed25519 signature does not match the agent's public key", agent_id=str(agent_id)
        )
    try:
        return agent, WireMessage.model_validate(message)
    except ValidationError as exc:
        raise _invalid(exc, agent.id) from exc


def _invalid(exc: ValidationError, agent_id: uuid.UUID) -> Rejected:
    return Rejected(f"invalid readings: {describe(exc, limit=10)}", agent_id=str(agent_id))


def _check_steps_within(readings: Sequence[UnitReading]) -> None:
    """The steps between a message's own readings of each device (the consumer checks the
    step from what is already stored)."""
    by_device: dict[str, list[UnitReading]] = defaultdict(list)
    for reading in readings:
        by_device[reading.device_id].append(reading)
    for series in by_device.values():
        series.sort(key=_seq)
        for earlier, later in itertools.pairwise(series):
            _use_between(earlier, later)


def _seq(reading: UnitReading) -> int:
    return reading.seq


async def record_dead_letter(
    session: AsyncSession, *, topic: str, payload: bytes, reason: str, agent_id: str | None
) -> DeadLetter:
    letter = DeadLetter(
        id=uuid.uuid4(),
        received_at=utcnow(),
        topic=topic[:300],
        reason=reason[:2000],
        payload=payload[:DEAD_LETTER_KEEP_BYTES],
        payload_size=len(payload),
        agent_id=agent_id,
    )
    await repository.add_dead_letter(session, letter)
    await outbox.record(
        session,
        MessageDeadLettered(
            dead_letter_id=letter.id, topic_name=letter.topic, reason=letter.reason
        ),
    )
    return letter


@dataclass(frozen=True)
class Stored:
    new: int
    duplicate: int


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


class CounterSample(Protocol):
    """What the use arithmetic needs of a reading (stored, new, or a device's cursor), its
    counter in units of 10^-6 (`COUNTER_SCALE`)."""

    @property
    def seq(self) -> int: ...
    @property
    def counter(self) -> int: ...
    @property
    def ts(self) -> datetime: ...
    @property
    def resource(self) -> str: ...


@dataclass(frozen=True)
class _Sample:
    seq: int
    counter: int
    ts: datetime
    resource: str


_STEP_FLOOR_UNITS = {r: scaled_units(v, COUNTER_SCALE) for r, v in STEP_FLOOR.items()}


def _use_between(earlier: CounterSample, later: CounterSample) -> int:
    """Use between two readings of one counter, in units. A counter that went down was
    reset (plug reboot, firmware reset): everything it shows since is new use. A step beyond
    what a household can use in the time between is refused."""
    delta = later.counter - earlier.counter
    use = later.counter if delta < 0 else delta
    if use > _STEP_FLOOR_UNITS[later.resource]:
        # Below the floor no time between can make a step implausible.
        check_step(
            Resource(later.resource),
            Decimal(use).scaleb(-COUNTER_SCALE),
            earlier.ts,
            later.ts,
            device=later,
        )
    return use


def step_bound(resource: Resource, earlier: datetime, later: datetime) -> Decimal:
    hours = Decimal(max((later - earlier).total_seconds(), 0)) / 3600
    return STEP_FLOOR[resource] + STEP_RATE_PER_HOUR[resource] * hours


def check_step(
    resource: Resource, use: Decimal, earlier: datetime, later: datetime, *, device: object
) -> None:
    bound = step_bound(resource, earlier, later)
    if use > bound:
        seq = getattr(device, "seq", "?")
        raise ImplausibleStep(
            f"counter step of {use} {resource.unit} at seq {seq} exceeds the physical bound "
            f"of {bound.quantize(Decimal('0.001'))} {resource.unit} for the time since the "
            "previous reading"
        )


class BeyondKeptHistory(Unprocessable):
    """A reading older than the readings kept: its neighbours may be gone, so its use could
    not be split exactly. The batch goes to the dead letters."""


def history_horizon(keep_days: int, now: datetime | None = None) -> datetime | None:
    """The oldest time a reading is kept from (None: every reading is kept)."""
    return (now or utcnow()) - timedelta(days=keep_days) if keep_days > 0 else None


async def store_batch(session: AsyncSession, batch: NormalisedBatch | UnitBatch) -> Stored:
    return await store_batches(session, [batch])


async def store_batches(
    session: AsyncSession,
    batches: Sequence[NormalisedBatch | UnitBatch],
    *,
    keep_days: int = 0,
) -> Stored:
    """Store the readings not stored yet and fold their counter deltas into hourly use,
    whatever order they arrive in. Idempotent on (household, device, seq). A fixed number
    of statements for any number of batches and households.

    Each device has a cursor (its highest stored reading). Readings that arrive after it —
    the normal case — chain onto it without reading history; a reading that lands among
    stored ones re-splits its neighbours' delta from the stored readings."""
    in_units = [b.in_units() if isinstance(b, NormalisedBatch) else b for b in batches]
    household_keys = sorted({str(b.household_id) for b in in_units})
    if session.get_bind().dialect.name == "postgresql" and household_keys:
        # One writer per household at a time keeps the arithmetic consistent; taken in a
        # fixed order so two consumers never deadlock.
        await session.execute(
            text(
                "SELECT pg_advisory_xact_lock(hashtext(k)) "
                "FROM unnest(CAST(:keys AS text[])) AS k ORDER BY k"
            ),
            {"keys": household_keys},
        )
    received = utcnow()
    horizon = history_horizon(keep_days, received)
    if horizon is not None:
        for batch in in_units:
            oldest = min(r.ts for r in batch.readings)
            if oldest < horizon:
                raise BeyondKeptHistory(
                    f"a reading of {oldest.isoformat()} is older than the {keep_days} days of "
                    "readings kept"
                )
    unique: dict[tuple[uuid.UUID, str, int], tuple[UnitBatch, UnitReading]] = {}
    offered = 0
    for batch in in_units:
        offered += len(batch.readings)
        household_id = batch.household_id
        for r in batch.readings:
            unique[(household_id, r.device_id, r.seq)] = (batch, r)
    offered_readings = list(unique.values())  # `new` names them by their place here
    rows = [
        (
            batch.household_id,
            r.device_id,
            r.seq,
            batch.agent_id,
            r.resource,
            r.ts,
            r.counter,
            r.power,
            r.voltage,
            r.current,
        )
        for batch, r in offered_readings
    ]
    new = await repository.insert_new_readings(session, rows, received_at=received)
    by_device: dict[tuple[uuid.UUID, str], list[UnitReading]] = defaultdict(list)
    for position in new:
        batch, reading = offered_readings[position]
        by_device[(batch.household_id, reading.device_id)].append(reading)
    cursors = await repository.cursors(session, list(by_device))
    deltas: dict[tuple[uuid.UUID, str, str, datetime], int] = defaultdict(int)
    hours: dict[datetime, datetime] = {}
    advanced: dict[tuple[uuid.UUID, str], CounterSample] = {}
    for (household_id, device_id), fresh in by_device.items():
        source = source_of(device_id)

        def add(earlier: CounterSample, later: CounterSample, sign: int = 1) -> None:
            hour = hours.get(later.ts)
            if hour is None:
                hour = hours[later.ts] = _hour(later.ts)
            key = (household_id, later.resource, source, hour)  # noqa: B023
            deltas[key] += sign * _use_between(earlier, later)

        fresh.sort(key=_seq)
        cursor = cursors.get((household_id, device_id))
        if cursor is None or fresh[0].seq > cursor.seq:
            chain: list[CounterSample] = [cursor] if cursor is not None else []
            chain += fresh
            for earlier, later in itertools.pairwise(chain):
                add(earlier, later)
            advanced[(household_id, device_id)] = fresh[-1]
            continue
        seqs = {sample.seq for sample in fresh}
        around = [
            _Sample(r.seq, scaled_units(r.counter, COUNTER_SCALE), r.ts, str(r.resource))
            for r in await repository.device_readings_around(
                session, household_id, device_id, fresh[0].seq, fresh[-1].seq
            )
        ]
        # Pairs of old neighbours that a new reading now sits between lose their delta…
        old = [r for r in around if r.seq not in seqs]
        for earlier, later in itertools.pairwise(old):
            if any(earlier.seq < s < later.seq for s in seqs):
                add(earlier, later, -1)
        # …and every pair that involves a new reading gains its own.
        for earlier, later in itertools.pairwise(around):
            if earlier.seq in seqs or later.seq in seqs:
                add(earlier, later)
        if fresh[-1].seq > cursor.seq:
            advanced[(household_id, device_id)] = fresh[-1]
    await repository.save_cursors(
        session, {key: (s.seq, s.counter, s.ts, s.resource) for key, s in advanced.items()}
    )
    await repository.add_consumption(session, {k: v for k, v in deltas.items() if v != 0})
    return Stored(new=len(new), duplicate=offered - len(new))


async def arrivals_of_devices(
    session: AsyncSession, device_prefix: str
) -> list[tuple[datetime, datetime]]:
    """(reading time, stored time) of every reading of the devices whose id starts with
    `device_prefix`: how long they took to arrive (benchmarks, diagnostics)."""
    return await repository.arrivals_of_devices(session, device_prefix)


async def prune_readings(
    session: AsyncSession, *, keep_days: int, now: datetime | None = None
) -> int:
    """Delete the raw readings older than `keep_days` before `now` (their use stays in the
    hourly table, written in the same transaction as each reading). Each device keeps its
    last reading before the horizon: a late reading after it then still finds its neighbour
    and splits the use exactly. Returns how many were deleted."""
    horizon = history_horizon(keep_days, now)
    if horizon is None:
        return 0
    deleted = 0
    for household_id in await repository.households_with_readings(session):
        deleted += await repository.delete_readings_before(session, household_id, horizon)
    return deleted


async def _household_zone(session: AsyncSession, actor: Actor, household_id: uuid.UUID) -> ZoneInfo:
    household = await households.get_household(session, actor=actor, household_id=household_id)
    return ZoneInfo((await tariffs.get_region(session, household.region_code)).timezone)


def _window(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    end = end or utcnow() + timedelta(hours=1)
    start = start or end - timedelta(days=1)
    if start >= end:
        raise ValidationFailed("`from` must be before `to`", code="bad_window")
    if end - start > timedelta(days=366):
        raise ValidationFailed("a window is at most 366 days", code="bad_window")
    return start, end


async def household_readings(
    session: AsyncSession,
    *,
    actor: Actor,
    household_id: uuid.UUID,
    start: datetime | None,
    end: datetime | None,
    device_id: str | None,
    limit: int = 1000,
) -> Sequence[Reading]:
    await households.get_household(session, actor=actor, household_id=household_id)
    start, end = _window(start, end)
    return await repository.readings(
        session, household_id, start=start, end=end, device_id=device_id, limit=limit
    )


async def billed_sources(session: AsyncSession, household_id: uuid.UUID) -> dict[Resource, str]:
    """Which source is billed for each resource: the main meter where the household has one
    (it enters its indexes), else its plugs — never both, so no use is billed twice."""
    metered = await repository.metered_resources_of(session, [household_id])
    return {r: _billed(metered, household_id, r) for r in Resource}


def _billed(metered: dict[uuid.UUID, set[Resource]], household_id: uuid.UUID, resource: str) -> str:
    """The one rule: a resource with a main meter is billed from it, else from the plugs."""
    return METER if Resource(resource) in metered.get(household_id, ()) else PLUG


@dataclass(frozen=True)
class Point:
    start: datetime
    resource: Resource
    quantity: Decimal


@dataclass(frozen=True)
class Span(Point):
    """Use summed over hours from `start` to `end`."""

    end: datetime


async def billed_use_of(
    session: AsyncSession, household_ids: Sequence[uuid.UUID], *, start: datetime, end: datetime
) -> dict[uuid.UUID, list[Point]]:
    """Hourly use in [start, end) of many households at once, from each one's billed source
    (for the platform's own rating: no owner check)."""
    metered = await repository.metered_resources_of(session, household_ids)
    use: dict[uuid.UUID, list[Point]] = {h: [] for h in household_ids}
    rows = await repository.hourly_of_households(session, household_ids, start=start, end=end)
    for household_id, resource, source, hour, quantity in rows:
        billed = _billed(metered, household_id, resource)
        if source == billed:
            use[household_id].append(Point(hour, Resource(resource), quantity))
    return use


async def billed_totals_of(
    session: AsyncSession, household_ids: Sequence[uuid.UUID], *, start: datetime, end: datetime
) -> dict[uuid.UUID, list[Point]]:
    """Like `billed_use_of`, summed over [start, end) by the database: per household and
    resource one point at its first hour of use, whose quantity is the period's use, and the
    end of its last hour (`Span`). For rating periods with no tariff change inside."""
    metered = await repository.metered_resources_of(session, household_ids)
    use: dict[uuid.UUID, list[Point]] = {h: [] for h in household_ids}
    rows = await repository.totals_of_households(session, household_ids, start=start, end=end)
    for household_id, resource, source, first, last, total in rows:
        billed = _billed(metered, household_id, resource)
        if source == billed:
            use[household_id].append(Span(first, Resource(resource), total, last + HOUR))
    return use


async def changes_since(
    session: AsyncSession, household_ids: Sequence[uuid.UUID], *, since: datetime
) -> dict[uuid.UUID, list[tuple[datetime, datetime]]]:
    """For each household, the (hour, changed at) of its hours whose use changed after
    `since`: how settlement finds late readings of periods it already settled."""
    changed: dict[uuid.UUID, list[tuple[datetime, datetime]]] = {}
    for household_id, hour, at in await repository.hours_changed_of(
        session, household_ids, since=since
    ):
        changed.setdefault(household_id, []).append((hour, at))
    return changed


async def household_consumption(
    session: AsyncSession,
    *,
    actor: Actor,
    household_id: uuid.UUID,
    start: datetime | None,
    end: datetime | None,
    resource: Resource | None,
    granularity: str,
) -> list[Point]:
    """Use per hour, or per day in the household's region's time zone, from the billed
    source of each resource (`billed_sources`)."""
    zone = await _household_zone(session, actor, household_id)
    start, end = _window(start, end)
    billed = await billed_sources(session, household_id)
    rows: Sequence[HourlyConsumption] = [
        row
        for row in await repository.hourly(
            session, household_id, start=start, end=end, resource=resource
        )
        if row.source == billed[Resource(row.resource)]
    ]
    if granularity == "hour":
        return [Point(r.hour_start, Resource(r.resource), r.quantity) for r in rows]
    days: dict[tuple[datetime, Resource], Decimal] = defaultdict(Decimal)
    for r in rows:
        local = r.hour_start.astimezone(zone)
        day = local.replace(hour=0, minute=0, second=0, microsecond=0)
        days[(day, Resource(r.resource))] += r.quantity
    return [
        Point(day, res, q)
        for (day, res), q in sorted(days.items(), key=lambda i: (i[0][0], i[0][1]))
    ]


async def record_meter_reading(
    session: AsyncSession,
    *,
    actor: Actor,
    household_id: uuid.UUID,
    resource: Resource,
    value: Decimal,
    ts: datetime | None,
) -> Stored:
    """A heat or water meter index entered by the household, stored like any reading."""
    household = await households.get_household(session, actor=actor, household_id=household_id)
    moment = ts or utcnow()
    if moment > utcnow() + FUTURE_TOLERANCE:
        raise ValidationFailed(
            "a meter reading cannot be from the future", code="reading_in_future"
        )
    reading = NormalisedReading.of_meter(resource=resource, value=value, ts=moment)
    try:
        return await store_batch(
            session, NormalisedBatch(household_id=household.id, agent_id=None, readings=[reading])
        )
    except ImplausibleStep as exc:
        # From an agent this is a dead letter; typed in by a person, it is their input.
        raise ValidationFailed(str(exc), code="implausible_meter_step") from exc


@dataclass(frozen=True)
class Today:
    """A household's day so far, in its region's time zone, for its page."""

    start: datetime
    power_w: Decimal | None
    hourly: list[Point]
    totals: dict[Resource, Decimal]
    billed: dict[Resource, str]
    """The source billed for each resource: `meter` or `plug`."""


async def today(session: AsyncSession, *, actor: Actor, household_id: uuid.UUID) -> Today:
    zone = await _household_zone(session, actor, household_id)
    start = utcnow().astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    hourly = await household_consumption(
        session,
        actor=actor,
        household_id=household_id,
        start=start.astimezone(UTC),
        end=start.astimezone(UTC) + timedelta(days=1),
        resource=None,
        granularity="hour",
    )
    totals: dict[Resource, Decimal] = defaultdict(Decimal)
    for point in hourly:
        totals[point.resource] += point.quantity
    return Today(
        start=start,
        power_w=await current_power_w(session, household_id),
        hourly=hourly,
        totals=dict(totals),
        billed=await billed_sources(session, household_id),
    )


async def dead_letters(session: AsyncSession, *, limit: int = 100) -> Sequence[DeadLetter]:
    return await repository.dead_letters(session, limit=limit)


async def current_power_w(session: AsyncSession, household_id: uuid.UUID) -> Decimal | None:
    latest = await repository.latest_reading(session, household_id, Resource.ELECTRICITY)
    return latest.power_w if latest is not None else None


async def billed_use_by_hour(
    session: AsyncSession, start: datetime, end: datetime
) -> list[tuple[datetime, Resource, Decimal]]:
    """Every household's billed use per UTC hour and resource in [start, end) (analytics)."""
    return [
        (hour, Resource(resource), quantity)
        for hour, resource, quantity in await repository.billed_use_by_hour(session, start, end)
    ]


async def first_use_hour(session: AsyncSession) -> datetime | None:
    """The earliest hour with any use recorded."""
    return await repository.first_use_hour(session)


async def import_hourly_use(
    session: AsyncSession, use: dict[tuple[uuid.UUID, Resource, datetime], Decimal]
) -> None:
    """Add metered history by the hour (from plugs) without its readings: a household's use
    kept elsewhere before it joined, or a benchmark's seed."""
    await repository.add_consumption(
        session,
        {(h, r, PLUG, hour): scaled_units(q, COUNTER_SCALE) for (h, r, hour), q in use.items()},
    )
