"""Every SQL query of the telemetry context."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Row,
    Select,
    String,
    Uuid,
    bindparam,
    delete,
    func,
    literal_column,
    select,
    tuple_,
    type_coerce,
)
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.db import (
    ScaledDecimal,
    array_text,
    insert_for,
    table_of,
    unnest_positions,
    unnest_rows,
    utcnow,
)
from mornet.resources import Resource
from mornet.telemetry.models import (
    METER,
    METER_DEVICE_PREFIX,
    DeadLetter,
    DeviceCursor,
    HourlyConsumption,
    Reading,
)

READING_COLUMNS = (
    "household_id",
    "device_id",
    "seq",
    "agent_id",
    "resource",
    "ts",
    "counter",
    "power_w",
    "voltage_v",
    "current_a",
)
"""The order of a reading row's values in `insert_new_readings`; quantities in the whole
units the columns keep (`UnitReading`)."""


async def _write(
    session: AsyncSession,
    statement: Any,
    model: Any,
    columns: tuple[str, ...],
    rows: Sequence[Sequence[Any]],
    *,
    shared: dict[str, Any] | None = None,
) -> Any:
    """Run `statement` (an insert into `model`'s table with its ON CONFLICT, RETURNING…) for
    `rows` of `columns` values, plus the `shared` values every row has. A `ScaledDecimal`
    column's value is the whole count of units it stores. PostgreSQL takes the rows as
    arrays through `unnest` (one prepared statement, the shared values bound once); SQLite as
    an executemany."""
    shared = shared or {}
    if session.get_bind().dialect.name != "postgresql":
        table = table_of(model)
        # The integers bypass the columns' decimal conversion: they are what it would store.
        as_units = {
            name: bindparam(name, type_=BigInteger)
            for name in columns
            if isinstance(table.c[name].type, ScaledDecimal)
        }
        return await session.execute(
            statement.values(as_units) if as_units else statement,
            [{**dict(zip(columns, row, strict=True)), **shared} for row in rows],
        )
    from_arrays, parameters = _from_arrays(statement, model, columns, rows, shared)
    return await session.execute(from_arrays, parameters)


def _from_arrays(
    statement: Any,
    model: Any,
    columns: tuple[str, ...],
    rows: Sequence[Sequence[Any]],
    shared: dict[str, Any],
) -> tuple[Any, dict[str, Any]]:
    """PostgreSQL: `statement` inserting its rows from one array per column (as their text,
    `array_text`), and the parameters it takes."""
    parameters: dict[str, Any] = {
        name: array_text(values)
        for name, values in zip(columns, zip(*rows, strict=True), strict=True)
    }
    names = columns + tuple(shared)
    from_arrays = statement.from_select(names, unnest_rows(model, columns, tuple(shared)))
    return from_arrays, {**parameters, **shared}


async def insert_new_readings(
    session: AsyncSession, rows: Sequence[Sequence[Any]], *, received_at: datetime
) -> list[int]:
    """Insert what is not stored yet (rows of `READING_COLUMNS` values, all received at
    `received_at`); returns the positions in `rows` of those that were new. One statement
    for any number of rows."""
    if not rows:
        return []
    key = ("household_id", "device_id", "seq")
    readings = table_of(Reading)
    statement = insert_for(session, Reading).on_conflict_do_nothing(index_elements=list(key))
    shared = {"received_at": received_at}
    if session.get_bind().dialect.name != "postgresql":
        result = await _write(
            session,
            statement.returning(*(readings.c[name] for name in key)),
            Reading,
            READING_COLUMNS,
            rows,
            shared=shared,
        )
        position = {tuple(row[:3]): index for index, row in enumerate(rows)}
        return [position[(h, d, s)] for h, d, s in result.all()]
    # The new rows come back as one array of their positions in the arrays sent: sending
    # every new row's key back costs more than storing it.
    from_arrays, parameters = _from_arrays(statement, Reading, READING_COLUMNS, rows, shared)
    inserted = from_arrays.returning(*(readings.c[name] for name in key)).cte("inserted")
    # The key columns' arrays again, numbered: the same parameters, sent once.
    offered = unnest_positions(Reading, key, "offered")
    query: Select[Any] = (
        select(func.array_agg(literal_column("offered.position")))
        .select_from(offered)
        .where(*(inserted.c[name] == literal_column(f"offered.{name}") for name in key))
    )
    positions = (await session.execute(query, parameters)).scalar()
    return [p - 1 for p in positions or ()]


async def arrivals_of_devices(
    session: AsyncSession, device_prefix: str
) -> list[tuple[datetime, datetime]]:
    readings = table_of(Reading)
    query = select(readings.c.ts, readings.c.received_at).where(
        readings.c.device_id.startswith(device_prefix, autoescape=True)
    )
    return [(ts, received) for ts, received in (await session.execute(query)).all()]


async def households_with_readings(session: AsyncSession) -> list[uuid.UUID]:
    table = table_of(DeviceCursor)
    return list((await session.scalars(select(table.c.household_id).distinct())).all())


async def delete_readings_before(
    session: AsyncSession, household_id: uuid.UUID, horizon: datetime
) -> int:
    """Delete a household's readings from before `horizon`, except each device's last one
    before it (found through the primary key: the device's next reading is also old)."""
    readings = table_of(Reading)
    later = readings.alias("later")
    has_older_successor = (
        select(later.c.seq)
        .where(
            later.c.household_id == readings.c.household_id,
            later.c.device_id == readings.c.device_id,
            later.c.seq > readings.c.seq,
            later.c.ts < horizon,
        )
        .exists()
    )
    result = await session.execute(
        delete(readings).where(
            readings.c.household_id == household_id,
            readings.c.ts < horizon,
            has_older_successor,
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def device_readings_around(
    session: AsyncSession, household_id: uuid.UUID, device_id: str, low: int, high: int
) -> Sequence[Reading]:
    """The device's stored readings from the one before `low` to the one after `high`."""
    before = (
        select(func.max(Reading.seq))
        .where(
            Reading.household_id == household_id, Reading.device_id == device_id, Reading.seq < low
        )
        .scalar_subquery()
    )
    after = (
        select(func.min(Reading.seq))
        .where(
            Reading.household_id == household_id, Reading.device_id == device_id, Reading.seq > high
        )
        .scalar_subquery()
    )
    query = (
        select(Reading)
        .where(
            Reading.household_id == household_id,
            Reading.device_id == device_id,
            Reading.seq >= func.coalesce(before, low),
            Reading.seq <= func.coalesce(after, high),
        )
        .order_by(Reading.seq)
    )
    return (await session.scalars(query)).all()


async def cursors(
    session: AsyncSession, keys: list[tuple[uuid.UUID, str]]
) -> dict[tuple[uuid.UUID, str], Row[Any]]:
    """The devices' cursors (rows with the cursor's columns as attributes, the counter in
    units of 10^-6)."""
    if not keys:
        return {}
    table = table_of(DeviceCursor)
    columns = (
        table.c.household_id,
        table.c.device_id,
        table.c.seq,
        type_coerce(table.c.counter, BigInteger).label("counter"),
        table.c.ts,
        table.c.resource,
    )
    if session.get_bind().dialect.name == "postgresql":
        # The keys as two arrays: one prepared statement whatever their number (an IN list of
        # a thousand pairs is rendered and planned anew each time).
        wanted = (
            func.unnest(
                bindparam("households", [h for h, _ in keys], type_=ARRAY(Uuid)),
                bindparam("devices", [d for _, d in keys], type_=ARRAY(String)),
            )
            .table_valued("household_id", "device_id")
            .render_derived()
        )
        query = select(*columns).join(
            wanted,
            (table.c.household_id == wanted.c.household_id)
            & (table.c.device_id == wanted.c.device_id),
        )
    else:
        query = select(*columns).where(tuple_(table.c.household_id, table.c.device_id).in_(keys))
    return {(c.household_id, c.device_id): c for c in (await session.execute(query)).all()}


_CURSOR_COLUMNS = ("household_id", "device_id", "seq", "counter", "ts", "resource")


async def save_cursors(
    session: AsyncSession, moves: dict[tuple[uuid.UUID, str], tuple[int, int, datetime, str]]
) -> None:
    """Move cursors forward (never back: a concurrent older write cannot lower them). The
    counter is in units of 10^-6."""
    if not moves:
        return
    rows = [
        (h, d, seq, counter, ts, resource)
        for (h, d), (seq, counter, ts, resource) in sorted(
            moves.items(), key=lambda m: (str(m[0][0]), m[0][1])
        )
    ]
    upsert = insert_for(session, DeviceCursor)
    excluded = upsert.excluded
    upsert = upsert.on_conflict_do_update(
        index_elements=["household_id", "device_id"],
        set_={
            "seq": excluded.seq,
            "counter": excluded.counter,
            "ts": excluded.ts,
            "resource": excluded.resource,
        },
        where=table_of(DeviceCursor).c.seq < excluded.seq,
    )
    await _write(session, upsert, DeviceCursor, _CURSOR_COLUMNS, rows)


_HOURLY_COLUMNS = ("household_id", "resource", "source", "hour_start", "quantity")


async def add_consumption(
    session: AsyncSession, deltas: dict[tuple[uuid.UUID, str, str, datetime], int]
) -> None:
    """Add each delta (by household, resource, source and hour, in units of 10^-6) to its
    hour atomically (no read-modify-write)."""
    if not deltas:
        return
    rows = [
        (h, str(r), source, hour, q)
        for (h, r, source, hour), q in sorted(
            deltas.items(), key=lambda item: (str(item[0][0]), *item[0][1:])
        )
    ]
    upsert = insert_for(session, HourlyConsumption)
    upsert = upsert.on_conflict_do_update(
        index_elements=["household_id", "resource", "source", "hour_start"],
        set_={
            "quantity": table_of(HourlyConsumption).c.quantity + upsert.excluded.quantity,
            "updated_at": upsert.excluded.updated_at,
        },
    )
    await _write(
        session, upsert, HourlyConsumption, _HOURLY_COLUMNS, rows, shared={"updated_at": utcnow()}
    )


async def readings(
    session: AsyncSession,
    household_id: uuid.UUID,
    *,
    start: datetime,
    end: datetime,
    device_id: str | None,
    limit: int,
) -> Sequence[Reading]:
    query = select(Reading).where(
        Reading.household_id == household_id, Reading.ts >= start, Reading.ts < end
    )
    if device_id:
        query = query.where(Reading.device_id == device_id)
    return (
        await session.scalars(
            query.order_by(Reading.ts, Reading.device_id, Reading.seq).limit(limit)
        )
    ).all()


async def hourly(
    session: AsyncSession,
    household_id: uuid.UUID,
    *,
    start: datetime,
    end: datetime,
    resource: Resource | None,
) -> Sequence[HourlyConsumption]:
    query = select(HourlyConsumption).where(
        HourlyConsumption.household_id == household_id,
        HourlyConsumption.hour_start >= start,
        HourlyConsumption.hour_start < end,
    )
    if resource is not None:
        query = query.where(HourlyConsumption.resource == resource)
    return (
        await session.scalars(
            query.order_by(HourlyConsumption.hour_start, HourlyConsumption.resource)
        )
    ).all()


async def latest_reading(
    session: AsyncSession, household_id: uuid.UUID, resource: Resource
) -> Reading | None:
    query = (
        select(Reading)
        .where(Reading.household_id == household_id, Reading.resource == resource)
        .order_by(Reading.ts.desc())
        .limit(1)
    )
    return await session.scalar(query)


async def add_dead_letter(session: AsyncSession, letter: DeadLetter) -> None:
    session.add(letter)
    await session.flush()


async def dead_letters(session: AsyncSession, *, limit: int) -> Sequence[DeadLetter]:
    query = select(DeadLetter).order_by(DeadLetter.received_at.desc(), DeadLetter.id).limit(limit)
    return (await session.scalars(query)).all()


async def count_readings(session: AsyncSession, household_id: uuid.UUID | None = None) -> int:
    query = select(func.count()).select_from(Reading)
    if household_id is not None:
        query = query.where(Reading.household_id == household_id)
    return int(await session.scalar(query) or 0)


async def hourly_of_households(
    session: AsyncSession, household_ids: Sequence[uuid.UUID], *, start: datetime, end: datetime
) -> list[tuple[uuid.UUID, str, str, datetime, Decimal]]:
    """(household, resource, source, hour, quantity) of many households in one query."""
    if not household_ids:
        return []
    table = HourlyConsumption.__table__
    query = select(
        table.c.household_id, table.c.resource, table.c.source, table.c.hour_start, table.c.quantity
    ).where(
        table.c.household_id.in_(household_ids),
        table.c.hour_start >= start,
        table.c.hour_start < end,
    )
    return [(h, r, s, hour, q) for h, r, s, hour, q in (await session.execute(query)).all()]


async def metered_resources_of(
    session: AsyncSession, household_ids: Sequence[uuid.UUID] | None = None
) -> dict[uuid.UUID, set[Resource]]:
    """The resources each household has main-meter indexes for (every household's: None)."""
    query = select(DeviceCursor.household_id, DeviceCursor.resource).where(
        DeviceCursor.device_id.startswith(METER_DEVICE_PREFIX, autoescape=True)
    )
    if household_ids is not None:
        query = query.where(DeviceCursor.household_id.in_(household_ids))
    rows = await session.execute(query)
    metered: dict[uuid.UUID, set[Resource]] = {}
    for household_id, resource in rows.all():
        metered.setdefault(household_id, set()).add(Resource(resource))
    return metered


async def hours_changed_of(
    session: AsyncSession, household_ids: Sequence[uuid.UUID], *, since: datetime
) -> list[tuple[uuid.UUID, datetime, datetime]]:
    """(household, hour, changed at) of the hours of these households changed after `since`."""
    if not household_ids:
        return []
    query = select(
        HourlyConsumption.household_id, HourlyConsumption.hour_start, HourlyConsumption.updated_at
    ).where(HourlyConsumption.household_id.in_(household_ids), HourlyConsumption.updated_at > since)
    return [(h, hour, at) for h, hour, at in (await session.execute(query)).all() if at]


async def totals_of_households(
    session: AsyncSession, household_ids: Sequence[uuid.UUID], *, start: datetime, end: datetime
) -> list[tuple[uuid.UUID, str, str, datetime, datetime, Decimal]]:
    """(household, resource, source, first hour, last hour, total use) in [start, end) of many
    households, summed by the database: one row per household, resource and source."""
    if not household_ids:
        return []
    table = HourlyConsumption.__table__
    query = (
        select(
            table.c.household_id,
            table.c.resource,
            table.c.source,
            func.min(table.c.hour_start),
            func.max(table.c.hour_start),
            func.sum(table.c.quantity),
        )
        .where(
            table.c.household_id.in_(household_ids),
            table.c.hour_start >= start,
            table.c.hour_start < end,
        )
        .group_by(table.c.household_id, table.c.resource, table.c.source)
    )
    return [
        (h, r, s, first, last, total)
        for h, r, s, first, last, total in (await session.execute(query)).all()
    ]


async def billed_use_by_hour(
    session: AsyncSession, start: datetime, end: datetime
) -> list[tuple[datetime, str, Decimal]]:
    """(hour, resource, use) over every household, the billed source only (a resource with a
    main meter counts its meter; without one, its plugs), summed by the database."""
    table = HourlyConsumption.__table__
    meters = (
        select(DeviceCursor.household_id)
        .where(
            DeviceCursor.device_id.startswith(METER_DEVICE_PREFIX, autoescape=True),
            DeviceCursor.household_id == table.c.household_id,
            DeviceCursor.resource == table.c.resource,
        )
        .exists()
    )
    query = (
        select(table.c.hour_start, table.c.resource, func.sum(table.c.quantity))
        .where(table.c.hour_start >= start, table.c.hour_start < end)
        .where((table.c.source == METER) | ~meters)
        .group_by(table.c.hour_start, table.c.resource)
    )
    return [(h, r, q) for h, r, q in (await session.execute(query)).all()]


async def first_use_hour(session: AsyncSession) -> datetime | None:
    first: datetime | None = await session.scalar(select(func.min(HourlyConsumption.hour_start)))
    return first
