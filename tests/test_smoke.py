from __future__ import annotations

import httpx


async def test_healthz_answers_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_openapi_lists_every_context(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    # One route of every context that has a REST API.
    for path in (
        "/api/auth/register",  # accounts
        "/api/auth/login",  # identity
        "/api/households/{household_id}/agents",  # households
        "/api/tariffs/{region}",  # tariffs
        "/api/households/{household_id}/meter-readings",  # telemetry
        "/api/chain",  # chain
        "/api/token/mint",  # tokens
        "/api/wallet/transfers",  # wallets
    ):
        assert path in paths, path
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


async def test_unknown_api_route_is_a_json_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
