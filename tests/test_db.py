from __future__ import annotations

import asyncio
import stat
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.dialects import sqlite

from mornet.db import (
    ScaledDecimal,
    UTCDateTime,
    async_url,
    create_engine,
    ensure_private_sqlite_file,
    migrate,
)


def test_scaled_decimal_round_trips_exactly() -> None:
    column = ScaledDecimal(4)
    dialect = sqlite.dialect()
    for value in ("0.0001", "8.16", "99999999999.9999", "-3.5"):
        stored = column.process_bind_param(Decimal(value), dialect)
        assert isinstance(stored, int)
        assert column.process_result_value(stored, dialect) == Decimal(value)
    assert column.process_bind_param(Decimal("8.16"), dialect) == 81600


def test_scaled_decimal_refuses_to_round_silently() -> None:
    with pytest.raises(ValueError, match="decimal places"):
        ScaledDecimal(2).process_bind_param(Decimal("1.005"), sqlite.dialect())


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        UTCDateTime().process_bind_param(datetime(2025, 1, 1), sqlite.dialect())  # noqa: DTZ001


def test_database_urls_map_to_async_drivers() -> None:
    assert async_url("sqlite:////tmp/x.db") == "sqlite+aiosqlite:////tmp/x.db"
    assert async_url("postgresql://u:p@h:5432/d") == "postgresql+asyncpg://u:p@h:5432/d"
    with pytest.raises(ValueError, match="unsupported"):
        async_url("mysql://h/d")


async def test_the_sqlite_database_is_private_to_its_owner(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'data' / 'mornet.db'}"
    await asyncio.to_thread(migrate, url)
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE scratch (x INTEGER)"))
            await connection.execute(text("INSERT INTO scratch VALUES (1)"))
        files = [tmp_path / "data" / name for name in ("mornet.db", "mornet.db-wal")]
        for file in files:
            assert file.exists(), file
            assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
    finally:
        await engine.dispose()


def test_an_existing_database_file_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    path.touch(mode=0o644)
    path.chmod(0o644)
    ensure_private_sqlite_file(f"sqlite:///{path}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_sqlite_reads_run_in_place_but_a_write_waiting_on_a_lock_never_blocks_the_loop(
    tmp_path: Path,
) -> None:
    """SQLite's reads run on the event loop; a write that must wait for another transaction's
    lock waits on aiosqlite's thread. If it waited on the loop, the holder could never commit
    and the write would fail with 'database is locked' after the busy timeout."""
    engine = create_engine(f"sqlite:///{tmp_path / 'mornet.db'}")
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE scratch (x INTEGER)"))
            await connection.execute(text("INSERT INTO scratch VALUES (1)"))
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        ticking = asyncio.create_task(ticker())
        async with engine.connect() as holder, engine.connect() as other:
            await holder.execute(text("INSERT INTO scratch VALUES (2)"))  # holds the write lock
            # A read does not wait for the writer, and sees only what is committed.
            assert (await other.scalar(text("SELECT count(*) FROM scratch"))) == 1
            waiting = asyncio.create_task(other.execute(text("INSERT INTO scratch VALUES (3)")))
            before = ticks
            await asyncio.sleep(0.3)
            assert not waiting.done()  # the second writer waits for the lock …
            assert ticks - before >= 10  # … while the loop keeps running
            await holder.commit()
            await waiting
            await other.commit()
        ticking.cancel()
        async with engine.connect() as connection:
            assert (await connection.scalar(text("SELECT count(*) FROM scratch"))) == 3
    finally:
        await engine.dispose()


async def test_sqlite_writers_of_one_process_queue_for_each_other_not_for_the_busy_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer behind another in the same process waits on the process's writer lock, not in
    SQLite's busy handler (which sleeps up to 100 ms between looks): it holds no SQLite lock
    while it waits, goes on as soon as the first commits, and gives up as SQLite would after
    the busy timeout."""
    from sqlalchemy.exc import OperationalError

    from mornet import db

    engine = create_engine(f"sqlite:///{tmp_path / 'mornet.db'}")
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE scratch (x INTEGER)"))
        async with engine.connect() as holder, engine.connect() as other:
            await holder.execute(text("INSERT INTO scratch VALUES (1)"))
            waiting = asyncio.create_task(other.execute(text("INSERT INTO scratch VALUES (2)")))
            await asyncio.sleep(0.2)
            assert not waiting.done()
            [writers] = db._WRITERS[asyncio.get_running_loop()].values()
            lock = writers.lock
            assert lock.locked()
            raw = await other.get_raw_connection()
            assert not raw.driver_connection._conn.in_transaction  # queued here, not in SQLite
            await holder.commit()
            await asyncio.wait_for(waiting, 1)
            await other.commit()
            assert not lock.locked()  # every transaction ended: nobody holds it

            monkeypatch.setattr(db, "WRITER_WAIT_SECONDS", 0.2)
            await holder.execute(text("INSERT INTO scratch VALUES (3)"))
            with pytest.raises(OperationalError, match="database is locked"):
                await other.execute(text("INSERT INTO scratch VALUES (4)"))
            await other.rollback()
            await holder.rollback()  # a rollback ends the transaction too
            assert not lock.locked()

            # A connection dropped mid-transaction (closed without ending it through the
            # driver) leaves the lock taken: the next writer takes it over after the wait.
            await holder.execute(text("INSERT INTO scratch VALUES (5)"))
            holder_raw = await holder.get_raw_connection()
            holder_raw.driver_connection._conn.rollback()  # behind the driver's back
            await other.execute(text("INSERT INTO scratch VALUES (6)"))
            await other.commit()
            assert writers.holder is None
            assert not lock.locked()
            await holder.rollback()

            # A forced close (SQLAlchemy's terminate) gives the lock back at once.
            await holder.execute(text("INSERT INTO scratch VALUES (7)"))
            assert lock.locked()
            await holder.invalidate()
            assert not lock.locked()
        async with engine.connect() as connection:
            assert (await connection.scalar(text("SELECT count(*) FROM scratch"))) == 3
    finally:
        await engine.dispose()


async def test_array_text_reads_back_every_value_on_postgresql() -> None:
    """`array_text` is what `unnest_rows` sends: PostgreSQL must read every value back as it
    was, whatever characters a text holds."""
    import uuid
    from datetime import UTC, timedelta, timezone

    import asyncpg

    from mornet.db import array_text
    from tests.conftest import POSTGRES_URL, _pg_dsn

    texts = [
        "plain",
        'with "quotes"',
        "back\\slash",
        "a,b",
        "{braces}",
        " spaced ",
        "NULL",
        "",
        "ünï",
    ]
    ids = [uuid.uuid4(), None, uuid.uuid4()]
    moments = [
        datetime(2026, 11, 1, 10, 0, 0, 123456, tzinfo=UTC),
        datetime(2026, 11, 1, 13, 0, tzinfo=timezone(timedelta(hours=3))),
        None,
    ]
    counts = [0, -5, 2**63 - 1, None, 42]
    connection = await asyncpg.connect(_pg_dsn(POSTGRES_URL))
    try:
        for values, sql_type in (
            ([*texts, "ünï", None], "VARCHAR(100)"),
            (ids, "UUID"),
            (moments, "TIMESTAMP WITH TIME ZONE"),
            (counts, "BIGINT"),
        ):
            rows = await connection.fetch(
                f"SELECT unnest(CAST(CAST($1 AS TEXT) AS {sql_type}[]))", array_text(values)
            )
            assert [row[0] for row in rows] == values
    finally:
        await connection.close()
    with pytest.raises(ValueError, match="naive"):
        array_text([datetime(2026, 1, 1)])  # noqa: DTZ001
    # A text is always quoted: it never adds elements to an array of another type.
    assert array_text([1, "1,2"]) == '{1,"1,2"}'
    with pytest.raises(TypeError):
        array_text([1.5])


async def test_a_pooled_postgresql_connection_costs_no_ping_and_a_closed_one_is_replaced() -> None:
    """Checking a connection out of the pool sends nothing to the server (a ping was three
    round trips — BEGIN, `;`, ROLLBACK — per transaction); a connection the server closed
    since it was pooled is replaced at checkout, so the next transaction works."""
    from tests.conftest import POSTGRES_URL

    engine = create_engine(POSTGRES_URL)
    sent: list[str] = []
    try:
        async with engine.connect() as connection:
            raw = await connection.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            driver.add_query_logger(lambda record: sent.append(record.query))
            first_pid = await connection.scalar(text("SELECT pg_backend_pid()"))
        sent.clear()
        async with engine.begin() as connection:  # the same pooled connection
            assert await connection.scalar(text("SELECT pg_backend_pid()")) == first_pid
        assert sent == ["BEGIN;", "COMMIT;"], sent

        # The server ends that connection while it sits in the pool.
        async with engine.connect() as other:
            other_pid = await other.scalar(text("SELECT pg_backend_pid()"))
            assert other_pid == first_pid  # one connection in the pool: the same again
        killer = create_engine(POSTGRES_URL)
        try:
            async with killer.connect() as connection:
                await connection.execute(
                    text("SELECT pg_terminate_backend(:pid)"), {"pid": first_pid}
                )
        finally:
            await killer.dispose()
        await asyncio.sleep(0.2)  # the termination reaches the pooled connection's socket
        async with engine.begin() as connection:
            assert await connection.scalar(text("SELECT 1")) == 1
            assert await connection.scalar(text("SELECT pg_backend_pid()")) != first_pid
    finally:
        await engine.dispose()
