"""`mornet agent …`, parsed without the server's command line (Typer, Rich, settings) so the
agent process on a Raspberry Pi loads only what it runs."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from pathlib import Path

from pydantic import ValidationError

from mornet.agent.config import AgentConfig, load_config


class AgentCommandFailed(Exception):
    """A clear reason the command could not do its work (exit code 2)."""


def _config(path: Path) -> AgentConfig:
    if not path.is_file():
        raise AgentCommandFailed(f"{path}: no such file")
    try:
        return load_config(path)
    except ValidationError as exc:
        raise AgentCommandFailed(f"{path}: {exc}") from exc


def run(config_path: Path) -> None:
    """Read the configured plugs and meters and publish their readings until stopped."""
    from mornet.agent.runner import Agent

    config = _config(config_path)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(Agent(config).run())


def send(config_path: Path, file: Path) -> str:
    """Sign and publish the readings in `file` as this agent; returns the broker's answer."""
    from mornet.agent.publisher import SendFailed, send_readings
    from mornet.wire.telemetry import MAX_READINGS_PER_MESSAGE

    config = _config(config_path)
    if not file.is_file():
        raise AgentCommandFailed(f"{file}: no such file")
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AgentCommandFailed(f"{file}: not JSON: {exc}") from exc
    readings = document.get("readings") if isinstance(document, dict) else document
    if not isinstance(readings, list) or not all(isinstance(r, dict) for r in readings):
        raise AgentCommandFailed(
            f'{file}: expected a list of reading objects (or {{"readings": [...]}})'
        )
    if not 0 < len(readings) <= MAX_READINGS_PER_MESSAGE:
        raise AgentCommandFailed(
            f"{file}: a message carries 1 to {MAX_READINGS_PER_MESSAGE} readings"
        )
    try:
        return send_readings(config, readings)
    except SendFailed as exc:
        raise AgentCommandFailed(str(exc)) from exc


# Optional packages libraries pick up when they happen to be installed: paho-mqtt looks for
# dnspython (DNS SRV lookups), structlog for Rich (pretty tracebacks). The agent uses neither;
# where the server is installed alongside, they would take ~8 MB of the agent's 64 MB.
UNUSED_OPTIONAL_IMPORTS = ("dns", "rich")


def main(argv: list[str]) -> int:
    for name in UNUSED_OPTIONAL_IMPORTS:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # None: "not installed"
    parser = argparse.ArgumentParser(prog="mornet agent", description="The edge agent.")
    commands = parser.add_subparsers(dest="command", required=True)
    run_command = commands.add_parser("run", help=run.__doc__)
    run_command.add_argument("--config", type=Path, required=True, help="agent.toml")
    send_command = commands.add_parser(
        "send",
        help="Sign and publish readings from a file as this agent, and print the broker's "
        "answer (for meters without a driver, and for scripts).",
    )
    send_command.add_argument("--config", type=Path, required=True, help="agent.toml")
    send_command.add_argument(
        "--file",
        type=Path,
        required=True,
        help="JSON: the wire's `readings` list (or an object holding one)",
    )
    arguments = parser.parse_args(argv)
    try:
        if arguments.command == "run":
            run(arguments.config)
        else:
            print(send(arguments.config, arguments.file))
    except AgentCommandFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
