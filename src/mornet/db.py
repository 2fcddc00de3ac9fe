"""Database plumbing: one metadata, column types that behave the same on SQLite and
PostgreSQL, the async engine, and migrations."""

from __future__ import annotations

import asyncio
import functools
import os
import sqlite3
import threading
import uuid
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar, overload

import aiosqlite
import structlog
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    DateTime,
    Dialect,
    MetaData,
    Select,
    TextClause,
    event,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.types import TypeDecorator, Uuid

from mornet.changes import CHANGES, Changes, has_written

log = structlog.get_logger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


ModelT = TypeVar("ModelT", bound=Base)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every backend (SQLite keeps no zone, so we store naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class ScaledDecimal(TypeDecorator[Decimal]):
    """An exact `Decimal` with a fixed number of places, stored as an integer count of the
    smallest unit (scale 2 → kopecks). Integers compare, sum and sort exactly on both SQLite
    and PostgreSQL, where SQLite's NUMERIC would silently become a float."""

    impl = BigInteger
    cache_ok = True

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> int | None:
        return scaled_units(value, self.scale)

    def process_result_value(self, value: int | None, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        # int(): PostgreSQL sums BIGINT as NUMERIC, whose Decimal may carry another exponent;
        # the count of smallest units is whole either way, and comes back at this scale.
        return Decimal(int(value)).scaleb(-self.scale)


@overload
def scaled_units(value: Decimal, scale: int) -> int: ...
@overload
def scaled_units(value: None, scale: int) -> None: ...
@overload
def scaled_units(value: Decimal | None, scale: int) -> int | None: ...
def scaled_units(value: Decimal | None, scale: int) -> int | None:
    """What a `ScaledDecimal(scale)` column stores for `value`: a whole count of 10^-scale."""
    if value is None:
        return None
    scaled = (value if isinstance(value, Decimal) else Decimal(value)).scaleb(scale)
    units = int(scaled)
    if units != scaled:
        raise ValueError(f"{value} has more than {scale} decimal places")
    return units


class UUIDPrimaryKey:
    """Random UUID ids: public in URLs and MQTT topics, so they must not be guessable."""

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)


def async_url(url: str) -> str:
    """Map a plain database URL to the async driver the platform uses for it."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")


def ensure_private_sqlite_file(url: str) -> None:
    """Create an SQLite database file readable by its owner only (it holds password hashes
    and sealed keys); SQLite gives its -wal and -shm files the same mode."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return
    path = parsed.database
    if not path or path == ":memory:":
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    # A file created before this rule (or by a copy) is made private too.
    os.chmod(path, 0o600)


POOL_SIZE = 20
"""Connections a process keeps open to a database server. Beyond it (and its overflow), a
request waits for a connection instead of opening and closing one per transaction, which
under load costs more than the transaction itself."""


def create_engine(url: str) -> AsyncEngine:
    ensure_private_sqlite_file(url)
    # Enough pooled connections for the requests in flight: a connection opened beyond the
    # pool is closed after its transaction, and opening one (a worker thread and the pragmas
    # on SQLite, a login on PostgreSQL) costs more than the transaction.
    pool: dict[str, Any] = {"pool_size": POOL_SIZE, "max_overflow": POOL_SIZE}
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:":
            pool["async_creator"] = lambda: InlineReadsConnection.open(database)
    engine = create_async_engine(async_url(url), **pool)
    if engine.dialect.name == "postgresql":
        event.listen(engine.sync_engine, "checkout", _replace_if_closed)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            # WAL lets the pages read while a writer commits; foreign keys are off by default.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.close()

    return engine


def _replace_if_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """A server connection may have ended since it was pooled (a restart, an idle timeout,
    an operator's `pg_terminate_backend`). asyncpg sees the server close it when that
    happens, so the pool replaces such a connection at checkout without asking the server:
    SQLAlchemy's ping costs three round trips (BEGIN, `;`, ROLLBACK) per transaction."""
    if dbapi_connection.driver_connection.is_closed():
        raise sa_exc.DisconnectionError("the server closed this pooled connection")


class InlineReadsConnection(aiosqlite.Connection):
    """aiosqlite's connection, which runs every call on a worker thread, except the calls
    that can never wait on a lock: creating a cursor, a SELECT, fetching and closing. Those run
    in place on the event loop, which costs microseconds where a thread round trip costs
    hundreds (a request's reads spent most of their time in hand-overs). In WAL mode a reader
    never waits for a writer; writes, commits and rollbacks, which may wait on the busy timeout,
    still go to the thread, so the event loop never blocks on another transaction's lock."""

    def __init__(self, connector: Callable[[], sqlite3.Connection], database: str) -> None:
        super().__init__(connector, iter_chunk_size=64)
        self._on_thread = 0
        self._count_lock = threading.Lock()
        self._database = database
        self._writer: _Writers | None = None
        """The process's writer lock for this database, while this connection holds it."""

    @classmethod
    def open(cls, database: str) -> InlineReadsConnection:
        # Used from the loop and from the worker thread, never at the same time by design;
        # SQLite's serialized mode guards the connection if a cancelled call still runs.
        return cls(lambda: sqlite3.connect(database, check_same_thread=False), database)

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self._on_thread == 0 and _runs_in_place(fn, args) and self._connection is not None:
            result = fn(*args, **kwargs)
            if self._writer is not None and not self._in_transaction():
                self._release_writer()
            return result
        if _may_write(fn) and (self._writer is None or not self._writer.held_by(self)):
            self._writer = await _take_writer_lock(self._database, self)
        with self._count_lock:
            self._on_thread += 1

        def counted() -> Any:
            try:
                return fn(*args, **kwargs)
            finally:
                with self._count_lock:
                    self._on_thread -= 1

        try:
            return await super()._execute(counted)  # type: ignore[no-untyped-call]
        finally:
            if not self._in_transaction():
                self._release_writer()  # the transaction ended (or never began): next writer

    def stop(self) -> asyncio.Future[Any] | None:
        """A forced close (SQLAlchemy's terminate) ends the transaction too."""
        self._release_writer()
        return super().stop()

    def _release_writer(self) -> None:
        if self._writer is not None:
            self._writer.release(self)
            self._writer = None

    def _in_transaction(self) -> bool:
        try:
            return self._connection is not None and self._connection.in_transaction
        except sqlite3.ProgrammingError:  # closed
            return False


# One writer at a time per database in this process, queued here rather than in SQLite's
# busy handler, which sleeps in steps of up to 100 ms before it looks at the lock again: a
# writer behind another commits a moment after it, not up to a tenth of a second later. Other
# processes on the same file still meet SQLite's own lock and busy timeout.
WRITER_WAIT_SECONDS = 5.0
"""As long as SQLite's busy timeout: then a writer gives up as SQLite would have."""


class _Writers:
    """The writer lock of one database in one event loop, and the connection holding it."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.holder: weakref.ref[InlineReadsConnection] | None = None

    async def take(self, connection: InlineReadsConnection) -> None:
        try:
            async with asyncio.timeout(WRITER_WAIT_SECONDS):
                await self.lock.acquire()
        except TimeoutError:
            holder = self.holder() if self.holder is not None else None
            if holder is not None and holder._in_transaction():
                raise sqlite3.OperationalError("database is locked") from None
            # The holder is gone, or its transaction ended without telling (a connection
            # dropped mid-transaction): SQLite holds no lock for it, so this writer goes on
            # with the lock still taken, now its own.
            log.warning("db.writer_lock_abandoned")
        self.holder = weakref.ref(connection)

    def held_by(self, connection: InlineReadsConnection) -> bool:
        return self.holder is not None and self.holder() is connection

    def release(self, connection: InlineReadsConnection) -> None:
        if self.held_by(connection):
            self.holder = None
            self.lock.release()


_WRITERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Writers]] = (
    weakref.WeakKeyDictionary()
)


async def _take_writer_lock(database: str, connection: InlineReadsConnection) -> _Writers:
    writers = _WRITERS.setdefault(asyncio.get_running_loop(), {}).setdefault(database, _Writers())
    await writers.take(connection)
    return writers


def _may_write(fn: Callable[..., Any]) -> bool:
    """A statement run on the worker thread (a write, or a read queued behind one)."""
    return isinstance(getattr(fn, "__self__", None), sqlite3.Cursor) and getattr(
        fn, "__name__", ""
    ) in ("execute", "executemany", "executescript")


_IN_PLACE = frozenset({"cursor", "fetchone", "fetchmany", "fetchall", "close"})


def _runs_in_place(fn: Callable[..., Any], args: tuple[Any, ...]) -> bool:
    owner = getattr(fn, "__self__", None)
    name = getattr(fn, "__name__", "")
    if isinstance(owner, sqlite3.Cursor):
        if name == "execute":
            return isinstance(args[0], str) and args[0].lstrip()[:6].upper() == "SELECT"
        return name in _IN_PLACE
    if isinstance(owner, sqlite3.Connection):
        # Ending a transaction that was never begun (a read-only one) touches no lock.
        return name == "cursor" or (name in ("commit", "rollback") and not owner.in_transaction)
    return False


def create_sessionmaker(
    engine: AsyncEngine, changes: Changes | None = None
) -> async_sessionmaker[AsyncSession]:
    """Sessions of `engine`; with `changes`, their transactions announce what they write (and
    whatever else they `announce`) to the caches of every process."""
    if changes is None:
        return async_sessionmaker(engine, expire_on_commit=False)
    return async_sessionmaker(
        engine,
        expire_on_commit=False,
        info={CHANGES: changes},
        sync_session_class=changes.session_class(),
    )


def sessions_like(session: AsyncSession) -> async_sessionmaker[AsyncSession]:
    """Sessions of `session`'s database that announce their writes as `session` does: for a
    worker that must write in transactions of its own."""
    return async_sessionmaker(
        session.bind,
        expire_on_commit=False,
        info=dict(session.info),
        sync_session_class=type(session.sync_session),
    )


@asynccontextmanager
async def unit_of_work(
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """A session that commits once on success and rolls back on any error."""
    async with sessions() as session:
        try:
            yield session
            # A session that never began a transaction nor holds anything to write (a read
            # answered from caches) has nothing to commit.
            if session.in_transaction() or has_written(session.sync_session):
                await session.commit()
        except BaseException:
            await session.rollback()
            raise


def insert_for(session: AsyncSession, table: Any) -> Any:
    """An INSERT with the dialect's ON CONFLICT clauses (both SQLite and PostgreSQL speak
    them; SQLAlchemy's generic insert does not). Given a mapped class, a Core insert into its
    table (`table_of`)."""
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table_of(table))


def table_of(model: Any) -> Any:
    """The table of a mapped class (a table as it is). A statement on the table is plain Core:
    the session runs it without the ORM's bulk paths (which match the rows it writes against
    objects the session holds, at several times the statement's own cost). Use it where the
    session holds no object the statement changes, or where the caller updates them itself."""
    return getattr(model, "__table__", model)


@functools.cache
def unnest_rows(model: Any, columns: tuple[str, ...], shared: tuple[str, ...] = ()) -> Select[Any]:
    """PostgreSQL: `SELECT * , :shared::type… FROM unnest(:column::type[], …)` over columns
    of `model`'s table, for `insert(…).from_select(columns + shared, …)`. Rows go as one
    array per column (`array_text`), and a value every row shares once: one prepared
    statement for any number of rows — many times cheaper than an executemany of the same
    rows."""
    values = ", ".join(["*", *(_cast(model, name) for name in shared)])
    return select(text(values)).select_from(text(f"unnest({_arrays_of(model, columns)})"))


@functools.cache
def unnest_positions(model: Any, columns: tuple[str, ...], alias: str) -> TextClause:
    """PostgreSQL: `unnest(:column::type[], …) WITH ORDINALITY AS alias(column…, position)`,
    the same arrays as `unnest_rows` with each row's 1-based position: a statement can then
    name rows by their place in the arrays instead of sending their keys back."""
    arrays = _arrays_of(model, columns)
    return text(f"unnest({arrays}) WITH ORDINALITY AS {alias}({', '.join(columns)}, position)")


def _pg_type(model: Any, name: str) -> str:
    from sqlalchemy.dialects import postgresql

    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    return str(table_of(model).c[name].type.compile(dialect=dialect))


def _cast(model: Any, name: str) -> str:
    # Names and types come from the table's metadata, never from input.
    return f"CAST(:{name} AS {_pg_type(model, name)})"


def _arrays_of(model: Any, columns: tuple[str, ...]) -> str:
    # Each array arrives as its text (`array_text`), which PostgreSQL parses itself.
    return ", ".join(f"CAST(CAST(:{n} AS TEXT) AS {_pg_type(model, n)}[])" for n in columns)


def array_text(values: Sequence[Any]) -> str:
    """PostgreSQL's text form of a one-dimensional array of integers, strings, UUIDs or aware
    datetimes (None is NULL): what `unnest_rows` takes. A driver checks every element of a
    list against the collection ABCs to tell nested arrays apart, which costs more per value
    than writing the text; values that repeat (a household's id, a message's time) are
    written once."""
    if values and type(values[0]) is int:  # counts and sequence numbers rarely repeat
        return "{" + ",".join(str(v) if type(v) is int else _element_text(v) for v in values) + "}"
    written = {value: _element_text(value) for value in set(values)}
    return "{" + ",".join(map(written.__getitem__, values)) + "}"


def _element_text(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        raise TypeError("a boolean is not an array element here")
    if isinstance(value, int | uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware datetime")
        return value.isoformat()
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise TypeError(f"{type(value).__name__} is not an array element here")


async def insert_objects(session: AsyncSession, objects: Sequence[Base]) -> None:
    """Insert new mapped objects as rows, one Core statement per table, leaving the objects
    out of the session (they are the caller's answer, never changed in this transaction): the
    unit of work's bookkeeping per object costs more than the rows. Tables are written in the
    order their first object comes (parents before the rows that refer to them)."""
    by_model: dict[type[Base], list[dict[str, Any]]] = {}
    for instance in objects:
        columns = type(instance).__mapper__.column_attrs
        row = {attribute.key: getattr(instance, attribute.key) for attribute in columns}
        by_model.setdefault(type(instance), []).append(row)
    for model, rows in by_model.items():
        await session.execute(insert(table_of(model)), rows)


async def lock_rows(
    session: AsyncSession, model: type[Base], *criteria: ColumnElement[bool]
) -> None:
    """Take the write lock for `rows` before reading them. PostgreSQL needs nothing more than
    the caller's `SELECT … FOR UPDATE`; SQLite ignores FOR UPDATE, so a no-op UPDATE of the
    same rows takes its database write lock here (a concurrent writer waits on the busy
    timeout until this transaction ends), and the reads after it see every earlier commit."""
    if session.get_bind().dialect.name != "sqlite":
        return
    key = inspect(model).primary_key[0]
    await session.execute(update(model).where(*criteria).values({key.name: key}))


async def locked_one(
    session: AsyncSession, model: type[ModelT], *criteria: ColumnElement[bool]
) -> ModelT | None:
    """The row of `model` matching `criteria`, write-locked until the transaction ends (on
    either backend, `lock_rows`) and read fresh: what is locked, not a stale copy."""
    await lock_rows(session, model, *criteria)
    row: ModelT | None = await session.scalar(
        select(model).where(*criteria).with_for_update().execution_options(populate_existing=True)
    )
    return row


_WAKES = "mornet.db.wakes"


def set_after_commit(session: AsyncSession, wake: asyncio.Event) -> None:
    """Set `wake` once the session's transaction commits (never before: a worker woken early
    would look for the change and not find it); a rollback leaves it unset."""
    session.sync_session.info.setdefault(_WAKES, set()).add(wake)


@event.listens_for(Session, "after_commit")
def _set_wakes(session: Session) -> None:
    for wake in session.info.pop(_WAKES, ()):
        wake.set()


@event.listens_for(Session, "after_rollback")
def _forget_wakes(session: Session) -> None:
    session.info.pop(_WAKES, None)


def is_transient(error: BaseException) -> bool:
    """An outage (database or network unreachable, a lock timeout) rather than bad data:
    the same work succeeds once it passes."""
    if isinstance(error, OSError | TimeoutError | ConnectionError):
        return True
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(
        error, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.DisconnectionError
    )


def migrate(url: str, revision: str = "head") -> None:
    """Bring the database at `url` to `revision` with Alembic (runs its own event loop)."""
    from alembic import command
    from alembic.config import Config

    ensure_private_sqlite_file(url)
    config = Config()
    config.set_main_option("script_location", "mornet:migrations")
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, revision)
