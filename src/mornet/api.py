"""The one ASGI app: every context's REST routes under /api, one GraphQL schema, the pages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.tools import merge_types

from mornet import __version__
from mornet.accounts import endpoints as accounts_api
from mornet.accounts import graphql as accounts_graphql
from mornet.accounts import pages as accounts_pages
from mornet.analytics import endpoints as analytics_api
from mornet.analytics import graphql as analytics_graphql
from mornet.analytics import pages as analytics_pages
from mornet.bank import endpoints as bank_api
from mornet.bank import graphql as bank_graphql
from mornet.bank import pages as bank_pages
from mornet.bank.dependencies import BankHost
from mornet.bank.runtime import open_bank
from mornet.chain import endpoints as chain_api
from mornet.chain.dependencies import ChainHost
from mornet.config import Settings
from mornet.cost import endpoints as cost_api
from mornet.cost import graphql as cost_graphql
from mornet.cost import pages as cost_pages
from mornet.dependencies import Platform, PlatformDep, SessionDep
from mornet.errors import declare_error_responses, install_error_handlers
from mornet.graphql import GraphQLContext, OfflineGraphQLRouter, Schema, UnitOfWork, limits
from mornet.households import endpoints as households_api
from mornet.households import graphql as households_graphql
from mornet.households import pages as households_pages
from mornet.identity import endpoints as identity_api
from mornet.identity import graphql as identity_graphql
from mornet.identity import pages as identity_pages
from mornet.identity.auth import IdentityDep, IdentityHost, user_for_bearer
from mornet.market import endpoints as market_api
from mornet.market import graphql as market_graphql
from mornet.market import pages as market_pages
from mornet.runtime import Runtime, settle_heap
from mornet.tariffs import endpoints as tariffs_api
from mornet.tariffs import graphql as tariffs_graphql
from mornet.tariffs import pages as tariffs_pages
from mornet.telemetry import endpoints as telemetry_api
from mornet.telemetry import pages as telemetry_pages
from mornet.tokens import endpoints as tokens_api
from mornet.tokens import pages as tokens_pages
from mornet.treasury import endpoints as treasury_api
from mornet.treasury import graphql as treasury_graphql
from mornet.treasury import pages as treasury_pages
from mornet.wallets import endpoints as wallets_api
from mornet.wallets import graphql as wallets_graphql
from mornet.wallets import pages as wallets_pages
from mornet.web import pages as web_pages


def build_graphql_schema() -> Schema:
    query = merge_types(
        "Query",
        (
            identity_graphql.IdentityQuery,
            analytics_graphql.AnalyticsQuery,
            bank_graphql.BankQuery,
            cost_graphql.CostQuery,
            households_graphql.HouseholdsQuery,
            market_graphql.MarketQuery,
            tariffs_graphql.TariffsQuery,
            treasury_graphql.TreasuryQuery,
            wallets_graphql.WalletsQuery,
        ),
    )
    mutation = merge_types(
        "Mutation",
        (
            accounts_graphql.AccountsMutation,
            bank_graphql.BankMutation,
            cost_graphql.CostMutation,
            households_graphql.HouseholdsMutation,
            market_graphql.MarketMutation,
            tariffs_graphql.TariffsMutation,
            treasury_graphql.TreasuryMutation,
            wallets_graphql.WalletsMutation,
        ),
    )
    return Schema(
        query=query, mutation=mutation, extensions=[UnitOfWork, *limits(once={"register"})]
    )


async def graphql_context(
    session: SessionDep, platform: PlatformDep, host: IdentityDep
) -> GraphQLContext:
    async def authenticate(_session: AsyncSession, token: str | None) -> object:
        return await user_for_bearer(host, token)

    return GraphQLContext(session=session, platform=platform, authenticate=authenticate)


def _as_platform(runtime: Runtime) -> Platform:
    """The runtime is the platform every layer reads through its own protocol; the tuple
    makes mypy check that it satisfies each of them."""
    protocols: tuple[Platform, IdentityHost, ChainHost, BankHost] = (
        runtime,
        runtime,
        runtime,
        runtime,
    )
    return protocols[0]


def create_app(runtime: Runtime, *, simulate: int = 0) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if runtime.changes is not None:
            await runtime.changes.start()
        # Tests hand in a runtime whose chain they started; `mornet up` starts it here.
        if runtime.chain is None:
            await runtime.start_chain()
        await runtime.open_missing_wallets()
        if runtime.relay is None:
            await runtime.start_events()
            runtime.start_bank_reconciler()
            runtime.start_settlement()
            runtime.start_market()
            runtime.start_treasury()
            runtime.start_analytics()
            runtime.start_retention()
        if simulate:
            await runtime.create_demo_treasury()
        if runtime.telemetry is None:
            await runtime.start_telemetry(simulate=simulate)
        settle_heap()
        yield
        await runtime.close()

    api_routers = (
        identity_api.router,
        accounts_api.router,
        analytics_api.router,
        bank_api.router,
        chain_api.router,
        cost_api.router,
        households_api.router,
        market_api.router,
        tariffs_api.router,
        tokens_api.router,
        treasury_api.router,
        wallets_api.router,
        telemetry_api.router,
    )
    page_routers = (
        identity_pages.router,
        analytics_pages.router,
        accounts_pages.router,
        households_pages.router,
        tariffs_pages.router,
        wallets_pages.router,
        bank_pages.router,
        market_pages.router,
        tokens_pages.router,
        treasury_pages.router,
        telemetry_pages.router,
    )
    app = FastAPI(
        title="MorNet API",
        version=__version__,
        description="Household utility telemetry, tariffs and settlement. "
        "Authenticate with `POST /api/auth/login`, then send `Authorization: Bearer <token>`.",
        lifespan=lifespan,
        # The contexts' routes in one flat list, matched in order. Included routers are
        # matched through FastAPI's nested inclusion, which walked every router twice per
        # request; the routers declare their full paths (`/api/...`), so nothing is lost.
        routes=[route for router in (*api_routers, *page_routers) for route in router.routes],
    )
    app.state.platform = _as_platform(runtime)
    if runtime.bank is None:
        runtime.bank = open_bank(runtime.settings, runtime.secrets, app, runtime.sessions)
    # Sections other contexts add to the household page.
    app.state.household_panels = [
        telemetry_pages.today_panel,
        cost_pages.month_panel,
        tokens_pages.settlements_panel,
    ]
    install_error_handlers(app, render_page=web_pages.render_error_page)
    web_pages.install_page_handlers(app)
    declare_error_responses(app.routes)

    app.include_router(
        OfflineGraphQLRouter(
            build_graphql_schema(), context_getter=graphql_context, allow_queries_via_get=False
        ),
        prefix="/graphql",
        include_in_schema=False,
    )

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def create_app_from_settings(settings: Settings) -> FastAPI:
    return create_app(Runtime.from_settings(settings))
