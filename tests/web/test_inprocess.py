"""`AppClient` hands the app the request a peer would send and gives back what the app
answered, failures included, as a peer over HTTP would see them."""

from __future__ import annotations

from typing import Any

from fastapi import Body, FastAPI
from fastapi.responses import PlainTextResponse

from mornet.web.inprocess import AppClient


def _app() -> FastAPI:
    app = FastAPI()

    @app.post("/echo")
    async def echo(payload: dict[str, Any] = Body(...)) -> dict[str, Any]:
        return {"got": payload}

    @app.post("/ok")
    async def ok() -> PlainTextResponse:
        return PlainTextResponse("OK")

    @app.post("/broken")
    async def broken() -> None:
        raise RuntimeError("the handler failed")

    return app


async def test_a_json_post_reaches_the_route_and_its_answer_comes_back() -> None:
    client = AppClient(_app())
    answer = await client.post("http://mornet.internal/echo", json={"Amount": 100, "Ok": True})
    assert answer.status_code == 200
    assert answer.json() == {"got": {"Amount": 100, "Ok": True}}
    ok = await client.post("/ok", json={})
    assert (ok.status_code, ok.text) == (200, "OK")


async def test_what_the_app_refuses_or_fails_on_is_an_answer_not_an_exception() -> None:
    client = AppClient(_app())
    missing = await client.post("/nowhere", json={})
    assert missing.status_code == 404
    invalid = await client.post("/echo", json=[1, 2])  # not an object: FastAPI's 422
    assert invalid.status_code == 422
    failed = await client.post("/broken", json={})
    assert failed.status_code == 500
