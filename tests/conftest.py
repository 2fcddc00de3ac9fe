"""Every database test runs once per backend (SQLite and PostgreSQL by default), each in a
fresh database copied from a template that Alembic migrated once per session."""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.api import create_app
from mornet.chain.node import LocalNode
from mornet.chain.service import ChainHandle
from mornet.config import Settings
from mornet.db import migrate
from mornet.runtime import Runtime
from tests.factories import CIPHER

BACKENDS = [
    b.strip()
    for b in os.environ.get("MORNET_TEST_DATABASES", "sqlite,postgresql").split(",")
    if b.strip()
]
POSTGRES_URL = os.environ.get(
    "MORNET_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def _pg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _pg_execute(sql: str) -> None:
    connection = await asyncpg.connect(_pg_dsn(POSTGRES_URL))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "mornet.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    import asyncio

    name = f"mornet_tpl_{os.getpid()}"
    asyncio.run(_pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    asyncio.run(_pg_execute(f'CREATE DATABASE "{name}"'))
    migrate(make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False))
    yield name
    asyncio.run(_pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_template(backend: str, request: pytest.FixtureRequest) -> str:
    """The migrated template for this backend (built outside the event loop: Alembic runs
    its own)."""
    if backend == "sqlite":
        return str(request.getfixturevalue("sqlite_template"))
    return str(request.getfixturevalue("postgres_template"))


@pytest.fixture
async def database_url(backend: str, database_template: str, tmp_path: Path) -> AsyncIterator[str]:
    if backend == "sqlite":
        target = tmp_path / "mornet.db"
        shutil.copyfile(database_template, target)
        yield f"sqlite:///{target}"
        return
    name = f"mornet_t_{uuid.uuid4().hex[:16]}"
    await _pg_execute(f'CREATE DATABASE "{name}" TEMPLATE "{database_template}"')
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        await _pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url)


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    runtime = Runtime.from_settings(settings)
    yield runtime
    await runtime.close()


@pytest.fixture
async def session(runtime: Runtime) -> AsyncIterator[AsyncSession]:
    async with runtime.sessions() as session:
        session.info[CIPHER] = runtime.cipher
        yield session


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def anvil() -> Iterator[LocalNode]:
    """One real anvil node for the session; every test deploys its own contracts on it."""
    node = LocalNode(port=free_port())
    node.start()
    yield node
    node.stop()


@pytest.fixture
async def chain(runtime: Runtime, anvil: LocalNode) -> ChainHandle:
    """The runtime connected to anvil with fresh contracts; tests drive the submitter
    themselves (`chain.submitter.drain()`) so that every step is observable."""
    return await runtime.start_chain(rpc_url=anvil.rpc_url, run_submitter=False)


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(runtime)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
async def rabbit_queue() -> AsyncIterator[str]:
    """A RabbitMQ queue name private to the test; the queue and its dead letters are deleted
    afterwards."""
    import aio_pika

    from mornet.bus import dead_letter_queue
    from tests.brokers import AMQP_URL

    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(name)
        await channel.queue_delete(dead_letter_queue(name))
