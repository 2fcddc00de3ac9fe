"""`mornet …`: run the platform and operate it."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console

from mornet.config import ConfigurationError, Settings

app = typer.Typer(
    help="MorNet: household utility telemetry, tariffs, tokens and settlement.",
    no_args_is_help=True,
)
admin_app = typer.Typer(help="Operator accounts.", no_args_is_help=True)
app.add_typer(admin_app, name="admin")
console = Console(stderr=True)


def _settings() -> Settings:
    return Settings()


def _fail(message: str) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code=2)


@app.command()
def migrate() -> None:
    """Bring the database to the latest schema."""
    from mornet.db import migrate as run_migrations

    settings = _settings()
    run_migrations(settings.resolved_database_url())
    console.print("database is up to date")


@app.command()
def up(
    host: Annotated[str, typer.Option(help="Interface for the API and pages.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port for the API and pages.")] = 8000,
) -> None:
    """Start the platform in one process on embedded defaults (or the configured engines)."""
    import uvicorn

    from mornet.api import create_app
    from mornet.db import migrate as run_migrations
    from mornet.logs import configure_logging
    from mornet.runtime import Runtime

    settings = _settings()
    configure_logging()
    try:
        runtime = Runtime.from_settings(settings)
    except ConfigurationError as exc:
        raise _fail(str(exc)) from exc
    run_migrations(settings.resolved_database_url())
    console.print(
        f"MorNet on http://{host}:{port}  (data: {settings.data_dir.resolve()}, "
        f"API docs: http://{host}:{port}/docs)"
    )
    uvicorn.run(create_app(runtime), host=host, port=port, log_level="info", access_log=False)


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

    from mornet.db import (
        create_engine,
        create_sessionmaker,
        unit_of_work,
    )
    from mornet.db import (
        migrate as run_migrations,
    )
    from mornet.identity import service as identity
    from mornet.identity.schemas import RegisterRequest

    try:
        body = RegisterRequest(email=email, password=password, full_name=full_name)
    except ValidationError as exc:
        raise _fail("; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())) from exc
    settings = _settings()
    url = settings.resolved_database_url()
    run_migrations(url)

    async def create() -> tuple[str, str]:
        engine = create_engine(url)
        try:
            async with unit_of_work(create_sessionmaker(engine)) as session:
                user = await identity.ensure_admin(
                    session, email=body.email, password=body.password, full_name=body.full_name
                )
                return user.email, str(user.id)
        finally:
            await engine.dispose()

    stored_email, user_id = asyncio.run(create())
    console.print(f"admin {stored_email} ready (id {user_id})")
