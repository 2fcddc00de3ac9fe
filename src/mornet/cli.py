"""`mornet …`: run the platform and operate it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console

from mornet.config import ConfigurationError, Settings

app = typer.Typer(
    help="MorNet: household utility telemetry, tariffs, tokens and settlement.",
    no_args_is_help=True,
)
admin_app = typer.Typer(help="Operator accounts.", no_args_is_help=True)
chain_app = typer.Typer(help="Token contracts and the chain.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks that print what they measured.", no_args_is_help=True)
treasury_app = typer.Typer(help="The DAO treasury (a Safe).", no_args_is_help=True)
analytics_app = typer.Typer(help="Analytics' projections.", no_args_is_help=True)
app.add_typer(admin_app, name="admin")
app.add_typer(chain_app, name="chain")
app.add_typer(bench_app, name="bench")
app.add_typer(treasury_app, name="treasury")
app.add_typer(analytics_app, name="analytics")
console = Console(stderr=True)
T = TypeVar("T")

if TYPE_CHECKING:  # the server stack is imported by the commands that need it
    from mornet.runtime import Runtime


@app.callback()
def _setup() -> None:
    from mornet.logs import configure_logging

    configure_logging()


def _fail(message: str) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code=2)


def _runtime() -> Runtime:
    from mornet.db import migrate as run_migrations
    from mornet.runtime import Runtime

    settings = Settings()
    try:
        runtime = Runtime.from_settings(settings)
    except ConfigurationError as exc:
        raise _fail(str(exc)) from exc
    run_migrations(settings.resolved_database_url())
    return runtime


def _with_runtime(work: Callable[[Runtime], Awaitable[T]]) -> T:
    from mornet.runtime import settle_heap

    runtime = _runtime()

    async def run() -> T:
        settle_heap()  # the worker roles run for days
        try:
            return await work(runtime)
        finally:
            await runtime.close()

    return asyncio.run(run())


@app.command()
def migrate() -> None:
    """Bring the database to the latest schema."""
    from mornet.db import migrate as run_migrations

    run_migrations(Settings().resolved_database_url())
    console.print("database is up to date")


@app.command()
def up(
    host: Annotated[str, typer.Option(help="Interface for the API and pages.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port for the API and pages.")] = 8000,
    mqtt_port: Annotated[
        int | None, typer.Option(help="Port of the embedded MQTT broker (default 1884).")
    ] = None,
    simulate: Annotated[
        int, typer.Option(help="Run N simulated households with agents in-process.")
    ] = 0,
) -> None:
    """Start the platform in one process on embedded defaults (or the configured engines)."""
    import uvicorn

    from mornet.api import create_app

    if mqtt_port is not None:
        os.environ["MORNET_MQTT_PORT"] = str(mqtt_port)
    # The bank sends payers back (and notifications) here unless an operator says otherwise.
    os.environ.setdefault("MORNET_PUBLIC_URL", f"http://{host}:{port}")
    runtime = _runtime()
    console.print(
        f"MorNet on http://{host}:{port}  (data: {runtime.settings.data_dir.resolve()}, "
        f"API docs: http://{host}:{port}/docs)"
    )
    app_ = create_app(runtime, simulate=simulate)
    uvicorn.run(app_, host=host, port=port, log_level="info", access_log=False)


@app.command()
def gateway(
    consume: Annotated[bool, typer.Option(help="Also store readings from the bus.")] = True,
) -> None:
    """Run the telemetry gateway (MQTT → bus) and the readings consumer, without the API."""

    async def serve(runtime: Runtime) -> None:
        from mornet.telemetry.runtime import start_telemetry

        runtime.telemetry = await start_telemetry(
            runtime.settings, runtime.sessions, runtime.event_bus(), gateway=True, consumer=consume
        )
        console.print("gateway running; Ctrl-C stops it")
        await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        _with_runtime(serve)


agent_app = typer.Typer(help="The edge agent (Raspberry Pi).", no_args_is_help=True)
app.add_typer(agent_app, name="agent")


@agent_app.command("run")
def agent_run(
    config: Annotated[Path, typer.Option(help="agent.toml", exists=True, dir_okay=False)],
) -> None:
    """Read the configured plugs and meters and publish their readings."""
    from mornet.agent import cli as agent_cli

    try:
        agent_cli.run(config)
    except agent_cli.AgentCommandFailed as exc:
        raise _fail(str(exc)) from exc


@agent_app.command("send")
def agent_send(
    config: Annotated[Path, typer.Option(help="agent.toml", exists=True, dir_okay=False)],
    file: Annotated[
        Path,
        typer.Option(
            help="JSON: the wire's `readings` list (or an object holding one)",
            exists=True,
            dir_okay=False,
        ),
    ],
) -> None:
    """Sign and publish readings from a file as this agent, and print the broker's answer
    (for meters without a driver, and for scripts)."""
    from mornet.agent import cli as agent_cli

    try:
        typer.echo(agent_cli.send(config, file))
    except agent_cli.AgentCommandFailed as exc:
        raise _fail(str(exc)) from exc


@admin_app.command("create")
def admin_create(
    email: Annotated[str, typer.Option(help="The admin's email (login).")],
    password: Annotated[
        str, typer.Option(help="At least 8 characters.", prompt=True, hide_input=True)
    ],
    full_name: Annotated[str, typer.Option(help="Shown in the console.")] = "Operator",
) -> None:
    """Create an admin, or promote and reset an existing account with this email."""
    from pydantic import ValidationError

    from mornet.accounts.service import ensure_admin_account
    from mornet.db import unit_of_work
    from mornet.errors import describe
    from mornet.identity.schemas import RegisterRequest

    try:
        body = RegisterRequest(email=email, password=password, full_name=full_name)
    except ValidationError as exc:
        raise _fail(describe(exc)) from exc

    async def create(runtime: Runtime) -> tuple[str, str]:
        async with unit_of_work(runtime.sessions) as session:
            user = await ensure_admin_account(
                session,
                runtime.cipher,
                email=body.email,
                password=body.password,
                full_name=body.full_name,
            )
            return user.email, str(user.id)

    stored_email, user_id = _with_runtime(create)
    console.print(f"admin {stored_email} ready (id {user_id})")


@chain_app.command("deploy")
def chain_deploy() -> None:
    """Deploy the token contracts on the configured chain (once per chain id)."""

    async def deploy(runtime: Runtime) -> dict[str, object]:
        handle = await runtime.start_chain(run_submitter=False)
        return {"chain_id": handle.chain_id, "contracts": handle.contracts}

    print(json.dumps(_with_runtime(deploy)))


@chain_app.command("status")
def chain_status() -> None:
    """The chain, the operator, the contracts and their total supplies."""

    async def status(runtime: Runtime) -> dict[str, object]:
        from mornet.chain.service import from_base_units

        handle = await runtime.start_chain(run_submitter=False)
        supplies = {t: str(from_base_units(await handle.total_supply(t))) for t in handle.contracts}
        return {
            "chain_id": handle.chain_id,
            "rpc_url": handle.client.public_rpc_url,
            "operator": handle.signer,
            "contracts": handle.contracts,
            "total_supply": supplies,
        }

    print(json.dumps(_with_runtime(status)))


@treasury_app.command("create")
def treasury_create(
    owner: Annotated[
        list[str],
        typer.Option(help="An owner: an operator's email or user id, or an external address."),
    ],
    threshold: Annotated[int, typer.Option(help="Confirmations a proposal needs.")] = 2,
    wait_seconds: Annotated[float, typer.Option(help="How long to wait for the chain.")] = 300,
) -> None:
    """Create the chain's treasury once: deploy the Safe contracts the chain lacks, a Safe with
    these owners and threshold, and hand it the token and parameter contracts. Waits until it
    is active and prints it as JSON."""

    async def create(runtime: Runtime) -> dict[str, object]:
        from mornet.db import unit_of_work
        from mornet.errors import MornetError
        from mornet.treasury import service as treasury

        handle = await runtime.start_chain(run_submitter=True)
        try:
            async with unit_of_work(runtime.sessions) as session:
                await treasury.create(
                    session, handle, owners=owner, threshold=threshold, actor_id=None
                )
        except MornetError as exc:
            raise _fail(exc.message) from exc
        deadline = asyncio.get_running_loop().time() + wait_seconds
        while True:
            async with unit_of_work(runtime.sessions) as session:
                found = await treasury.advance(session, handle)
            assert found is not None
            if found.status != treasury.TreasuryStatus.CREATING:
                break
            if asyncio.get_running_loop().time() > deadline:
                raise _fail("the treasury's transactions did not confirm in time")
            await asyncio.sleep(0.5)
        return {
            "status": found.status,
            "safe": found.safe,
            "owners": found.owners,
            "threshold": found.threshold,
            "parameters": found.parameters,
            "error": found.error,
        }

    result = _with_runtime(create)
    print(json.dumps(result))
    if result["status"] != "active":
        raise typer.Exit(1)


@analytics_app.command("rebuild")
def analytics_rebuild() -> None:
    """Throw analytics' series away and compute them again from the sources (telemetry, the
    market, identity, the chain's recorded moves, the event log). Prints how many points."""

    async def rebuild(runtime: Runtime) -> dict[str, object]:
        from mornet.analytics import service as analytics
        from mornet.db import unit_of_work

        handle = await runtime.start_chain(run_submitter=False)
        async with unit_of_work(runtime.sessions) as session:
            points = await analytics.rebuild(session, handle)
        return {"points": points}

    print(json.dumps(_with_runtime(rebuild)))


@app.command()
def reconcile() -> None:
    """Two checks, printed as JSON; exits 1 when either fails. The reserves: GCC on chain
    (plus mints in flight) against the roubles the bank holds. The tokens: every token's
    supply on chain against the recorded mints and burns (settlements, bank, operators, …),
    and every address's balance against its recorded moves."""

    async def check(runtime: Runtime) -> dict[str, object]:
        from mornet.bank import service as bank
        from mornet.chain import service as chain

        handle = await runtime.start_chain(run_submitter=False)
        async with runtime.sessions() as session:
            reserves = await bank.reserves(session, handle)
            tokens = await chain.reconcile_tokens(session, handle)
        return {
            **reserves.model_dump(mode="json"),
            "tokens": tokens.model_dump(mode="json"),
            "ok": reserves.ok and tokens.ok,
        }

    result = _with_runtime(check)
    print(json.dumps(result))
    if not result["ok"]:
        raise typer.Exit(1)


@app.command()
def settle(
    forever: Annotated[
        bool, typer.Option(help="Keep settling every minute (the worker role).")
    ] = False,
) -> None:
    """Settle every household period that is closed and not settled yet, then wait until the
    chain has the moves. Prints how many were settled as JSON."""

    async def run(runtime: Runtime) -> dict[str, object]:
        handle = await runtime.start_chain(run_submitter=False)
        if forever:
            runtime.start_settlement()
            await handle.submitter.run_forever()
        settled = await runtime.settle_once()
        await handle.submitter.drain(max_seconds=600)
        return {"settled": settled}

    print(json.dumps(_with_runtime(run)))


ScratchPostgres = Annotated[
    str | None, typer.Option(help="Run on a scratch PostgreSQL database on this server.")
]
"""The benchmarks' --postgres-url (SQLite when omitted)."""


@bench_app.command("ingest")
def bench_ingest(
    duration: Annotated[float, typer.Option(help="Seconds of load per step.")] = 60,
    rate: Annotated[
        float | None,
        typer.Option(help="Readings per second offered (default 20,000; embedded 2,000)."),
    ] = None,
    sweep: Annotated[
        bool, typer.Option(help="Raise the rate step by step until a step fails.")
    ] = False,
    steps: Annotated[
        str | None, typer.Option(help="The sweep's rates, readings/s, comma-separated.")
    ] = None,
    embedded: Annotated[
        bool,
        typer.Option(help="What `mornet up` runs: amqtt, in-process bus, SQLite, one process."),
    ] = False,
    households: Annotated[
        int | None, typer.Option(help="Agents publishing (default 200; embedded 20).")
    ] = None,
    processes: Annotated[
        int, typer.Option(min=1, help="Gateway processes and consumer processes (each).")
    ] = 1,
    batch: Annotated[int, typer.Option(help="Readings per message.")] = 50,
    devices: Annotated[int, typer.Option(help="Devices per household.")] = 10,
    postgres_url: Annotated[str, typer.Option(help="Server for a scratch database.")] = (
        "postgresql://postgres@127.0.0.1:5432/postgres"
    ),
    amqp_url: Annotated[str, typer.Option(help="RabbitMQ.")] = "amqp://guest:guest@127.0.0.1:5672/",
    mosquitto: Annotated[str | None, typer.Option(help="The mosquitto binary.")] = None,
) -> None:
    """Readings/s end to end with loss, duplicates, p50/p99 latency and CPU seconds per 1,000
    readings of every process; `--sweep` reports the highest rate that holds."""
    from mornet.bench.ingest import (
        EMBEDDED_SWEEP_READINGS_PER_S,
        SWEEP_READINGS_PER_S,
        run_ingest_benchmark,
    )

    if steps:
        try:
            rates = [float(step) for step in steps.split(",")]
        except ValueError:
            raise typer.BadParameter("steps are numbers separated by commas") from None
    elif sweep:
        rates = list(EMBEDDED_SWEEP_READINGS_PER_S if embedded else SWEEP_READINGS_PER_S)
    else:
        rates = [rate or (2000.0 if embedded else 20000.0)]
    result = asyncio.run(
        run_ingest_benchmark(
            duration=duration,
            households=households or (20 if embedded else 200),
            readings_per_s=rates,
            batch=batch,
            devices=devices,
            postgres_url=postgres_url,
            amqp_url=amqp_url,
            mosquitto=mosquitto,
            embedded=embedded,
            processes=processes,
        )
    )
    print(json.dumps(result))


@bench_app.command("bank")
def bench_bank(
    notifications: Annotated[int, typer.Option(help="CONFIRMED notifications sent.")] = 2000,
    rate: Annotated[float, typer.Option(help="Notifications per second offered.")] = 200,
    deposits: Annotated[int, typer.Option(help="Deposits opened and paid end to end.")] = 1000,
    concurrency: Annotated[int, typer.Option(help="Deposits in flight at once.")] = 32,
    users: Annotated[int, typer.Option(help="Paying users.")] = 20,
    postgres_url: ScratchPostgres = None,
) -> None:
    """Bank notifications/s with the time to `OK`, deposits/s end to end, the reserves check,
    against a real `mornet up` with its sandbox bank and local chain."""
    from mornet.bench.bank import run_bank_benchmark

    result = asyncio.run(
        run_bank_benchmark(
            notifications=notifications,
            rate=rate,
            deposits=deposits,
            concurrency=concurrency,
            users=users,
            postgres_url=postgres_url,
        )
    )
    print(json.dumps(result))


@bench_app.command("settle")
def bench_settle(
    households: Annotated[int, typer.Option(help="Households, each with a day of use.")] = 1000,
    owners: Annotated[int, typer.Option(help="Users owning them (one wallet each).")] = 100,
    postgres_url: ScratchPostgres = None,
) -> None:
    """Household-days rated per second and households settled per second end to end (moves
    confirmed on a local anvil), with the supplies reconciled afterwards."""
    from mornet.bench.settle import run_settle_benchmark

    result = asyncio.run(
        run_settle_benchmark(households_count=households, owners=owners, postgres_url=postgres_url)
    )
    print(json.dumps(result))


@bench_app.command("market")
def bench_market(
    engine_orders: Annotated[int, typer.Option(help="Orders into the in-memory engine.")] = 200000,
    traders: Annotated[int, typer.Option(help="Funded users trading over the API.")] = 10,
    clients: Annotated[int, typer.Option(help="Concurrent HTTP clients.")] = 16,
    orders: Annotated[int, typer.Option(help="Place and cancel requests over the API.")] = 2000,
    postgres_url: ScratchPostgres = None,
) -> None:
    """Orders per second in the matching engine and through the API (p50/p99), with
    `book_consistent` and `tokens_conserved`."""
    from mornet.bench.market import run_market_benchmark

    result = asyncio.run(
        run_market_benchmark(
            engine_orders=engine_orders,
            traders=traders,
            clients=clients,
            orders=orders,
            postgres_url=postgres_url,
        )
    )
    print(json.dumps(result))


@bench_app.command("analytics")
def bench_analytics(
    households: Annotated[int, typer.Option(help="Households to seed.")] = 10000,
    days: Annotated[int, typer.Option(help="Days of hourly use each.")] = 90,
    clients: Annotated[int, typer.Option(help="Concurrent HTTP clients.")] = 8,
    requests: Annotated[int, typer.Option(help="Requests per endpoint.")] = 400,
    postgres_url: ScratchPostgres = None,
) -> None:
    """p50/p95 and requests/s of the operators' summary, a 30-day series and a household's
    dashboard, beside the same process's bare /healthz (one JSON line)."""
    from mornet.bench.analytics import run_analytics_benchmark

    result = asyncio.run(
        run_analytics_benchmark(
            households_count=households,
            days=days,
            clients=clients,
            requests=requests,
            postgres_url=postgres_url,
        )
    )
    print(json.dumps(result))


@bench_app.command("api")
def bench_api(
    connections: Annotated[int, typer.Option(help="Concurrent keep-alive connections.")] = 20,
    seconds: Annotated[int, typer.Option(help="Seconds of load per route.")] = 10,
    postgres_url: ScratchPostgres = None,
) -> None:
    """requests/s and p50/p99 of /healthz and the common authenticated reads against one
    `mornet up` process, with each read's ratio to /healthz (one JSON line; needs wrk)."""
    from mornet.bench.api import run_api_benchmark

    result = asyncio.run(
        run_api_benchmark(connections=connections, seconds=seconds, postgres_url=postgres_url)
    )
    print(json.dumps(result))


@bench_app.command("chain")
def bench_chain(
    accounts: Annotated[int, typer.Option(help="Accounts minted to in each mode.")] = 2000,
    single: Annotated[int, typer.Option(help="Token moves sent one transaction each.")] = 200,
    batch_size: Annotated[int, typer.Option(help="Accounts per batch (max 256).")] = 256,
) -> None:
    """Token moves per second against a fresh local anvil: one-by-one versus batched."""
    from mornet.bench.chain import run_chain_benchmark

    result = asyncio.run(
        run_chain_benchmark(accounts=accounts, single=single, batch_size=batch_size)
    )
    print(json.dumps(result))
