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
