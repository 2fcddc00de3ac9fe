"""What every benchmark needs: scratch engines that are cleaned up, memory and percentiles."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import httpx
from sqlalchemy.engine import make_url

from mornet.chain.node import LocalNode
from mornet.db import migrate


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peak_rss_mb(pid: int) -> float:
    """A process's peak resident memory (VmHWM), 0 when it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@contextmanager
def scratch_directory() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="mornet-bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@asynccontextmanager
async def scratch_sqlite(directory: Path) -> AsyncIterator[str]:
    """A migrated SQLite database in `directory`."""
    url = f"sqlite:///{directory / 'bench.db'}"
    await asyncio.to_thread(migrate, url)
    yield url


@asynccontextmanager
async def scratch_postgres(server_url: str, name: str) -> AsyncIterator[str]:
    """A migrated PostgreSQL database `name` on the server at `server_url`, dropped after."""
    admin = make_url(server_url)
    dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)

    async def execute(sql: str) -> None:
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    await execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await execute(f'CREATE DATABASE "{name}"')
    try:
        url = admin.set(database=name).render_as_string(hide_password=False)
        await asyncio.to_thread(migrate, url)
        yield url
    finally:
        await execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@asynccontextmanager
async def scratch_mosquitto(directory: Path, binary: str | None = None) -> AsyncIterator[int]:
    """A private Mosquitto with no queue limits; yields its port."""
    executable = binary or shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = free_port()
    config = directory / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n"
        "max_inflight_messages 0\nlog_type error\n"
    )
    broker = await asyncio.create_subprocess_exec(executable, "-c", str(config))
    try:
        yield port
    finally:
        broker.terminate()
        await broker.wait()


@asynccontextmanager
async def scratch_chain() -> AsyncIterator[LocalNode]:
    """A fresh local anvil node."""
    node = LocalNode(port=free_port())
    await asyncio.to_thread(node.start)
    try:
        yield node
    finally:
        await asyncio.to_thread(node.stop)


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_by_process(pids: Sequence[int]) -> dict[int, float]:
    """User + system CPU seconds of each live process of `pids`. Compare two readings per
    process: a process that ended between them (a database connection closed) would take
    its whole CPU time out of a sum."""
    used = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        used[pid] = (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime
    return used


def cpu_between(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds used between two `cpu_by_process` readings by the processes alive at the
    second (one started in between counts whole)."""
    return sum(used - before.get(pid, 0.0) for pid, used in after.items())


def pids_named(*names: str) -> list[int]:
    """The processes whose command name is one of `names`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in names:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def children_of(pid: int) -> list[int]:
    """The direct child processes of `pid`."""
    try:
        tasks = Path(f"/proc/{pid}/task").iterdir()
        return [int(child) for task in tasks for child in (task / "children").read_text().split()]
    except OSError:
        return []


@contextmanager
def running_platform(
    data_dir: Path,
    *,
    admin: tuple[str, str],
    env: dict[str, str] | None = None,
    up_args: Sequence[str] = (),
) -> Iterator[str]:
    """A real `mornet up` process on embedded defaults (plus `env`, and `up_args` such as
    `--simulate 1`), with an admin account, its data in `data_dir`; yields its base URL."""
    with platform_process(data_dir, admin=admin, env=env, up_args=up_args) as (base, _):
        yield base


@contextmanager
def platform_process(
    data_dir: Path,
    *,
    admin: tuple[str, str],
    env: dict[str, str] | None = None,
    up_args: Sequence[str] = (),
) -> Iterator[tuple[str, int]]:
    """`running_platform`, yielding its base URL and its process id."""
    inherited = {k: v for k, v in os.environ.items() if k != "MORNET_DATABASE_URL"}
    env = {
        **inherited,
        "MORNET_DATA_DIR": str(data_dir),
        "MORNET_ANVIL_PORT": str(free_port()),
        "MORNET_MQTT_PORT": str(free_port()),
        **(env or {}),
    }
    email, password = admin
    created = subprocess.run(
        [
            sys.executable,
            "-m",
            "mornet",
            "admin",
            "create",
            "--email",
            email,
            "--password",
            password,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    port = free_port()
    log = (data_dir / "up.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "mornet", "up", "--port", str(port), *up_args],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("mornet up did not start:\n" + Path(log.name).read_text())
            time.sleep(0.2)
        yield base, process.pid
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()
