"""The error plumbing: an outage of the database is a 503 with a reason, never a 500."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import exc as sa_exc

from mornet.errors import install_error_handlers


async def test_a_busy_or_unreachable_database_is_a_503_with_a_reason() -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/api/locked")
    async def locked() -> None:
        raise sa_exc.OperationalError("UPDATE x", {}, Exception("database is locked"))

    @app.post("/api/broken")
    async def broken() -> None:
        raise sa_exc.IntegrityError("INSERT x", {}, Exception("not null"))

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        busy = await client.post("/api/locked")
        assert busy.status_code == 503
        assert busy.json()["error"]["code"] == "database_unavailable"
        assert busy.headers["Retry-After"] == "1"
        # Bad data is not an outage: it is not dressed up as one.
        assert (await client.post("/api/broken")).status_code == 500
