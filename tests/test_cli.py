"""The operator's commands, run as real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from mornet.api import create_app
from mornet.config import Settings
from mornet.runtime import Runtime


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mornet", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _on_node(database_url: str, tmp_path: Path, anvil: object) -> dict[str, str]:
    """The environment of a command on this database and the session's anvil node."""
    from mornet.chain.node import LocalNode

    assert isinstance(anvil, LocalNode)
    return {
        "MORNET_DATA_DIR": str(tmp_path / "data"),
        "MORNET_DATABASE_URL": database_url,
        "MORNET_CHAIN_RPC_URL": anvil.rpc_url,
    }


async def test_admin_create_makes_a_working_admin(database_url: str, tmp_path: Path) -> None:
    env = {"MORNET_DATA_DIR": str(tmp_path / "data"), "MORNET_DATABASE_URL": database_url}
    result = run_cli(
        "admin", "create", "--email", "Ops@Example.com", "--password", "operator-pass", env=env
    )
    assert result.returncode == 0, result.stderr
    assert "admin ops@example.com ready" in result.stderr

    runtime = Runtime.from_settings(Settings(data_dir=tmp_path / "data", database_url=database_url))
    try:
        transport = httpx.ASGITransport(app=create_app(runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            login = await client.post(
                "/api/auth/login", json={"email": "ops@example.com", "password": "operator-pass"}
            )
            assert login.status_code == 200
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            assert (await client.get("/api/admin/users", headers=headers)).status_code == 200
    finally:
        await runtime.close()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_admin_create_refuses_a_short_password(database_url: str, tmp_path: Path) -> None:
    env = {"MORNET_DATA_DIR": str(tmp_path / "data"), "MORNET_DATABASE_URL": database_url}
    result = run_cli(
        "admin", "create", "--email", "ops@example.com", "--password", "short", env=env
    )
    assert result.returncode == 2
    assert "password" in result.stderr


def test_up_refuses_to_start_in_production_with_a_placeholder_secret(tmp_path: Path) -> None:
    env = {
        "MORNET_DATA_DIR": str(tmp_path),
        "MORNET_ENV": "production",
        "MORNET_JWT_SECRET": "changeme",
    }
    result = run_cli("up", "--port", "0", env=env)
    assert result.returncode == 2
    assert "MORNET_JWT_SECRET must be set to a real secret" in result.stderr
    assert not (tmp_path / "mornet.db").exists()


def test_chain_deploy_then_status_on_a_configured_node(
    database_url: str, tmp_path: Path, anvil: object
) -> None:
    env = _on_node(database_url, tmp_path, anvil)
    deployed = run_cli("chain", "deploy", env=env)
    assert deployed.returncode == 0, deployed.stderr
    contracts = json.loads(deployed.stdout)["contracts"]
    assert set(contracts) == {"GCC", "E", "H", "W", "GCM"}
    status = run_cli("chain", "status", env=env)
    assert status.returncode == 0, status.stderr
    body = json.loads(status.stdout)
    assert body["chain_id"] == 31337
    assert body["contracts"] == contracts  # recorded per chain id: not deployed twice
    assert body["total_supply"] == dict.fromkeys(contracts, "0")
    reconciled = run_cli("reconcile", env=env)
    assert reconciled.returncode == 0, reconciled.stderr
    reserves = json.loads(reconciled.stdout)
    assert reserves["ok"] is True
    assert (reserves["escrow_rub"], reserves["gcc_total_supply"]) == ("0", "0")
    assert reserves["tokens"]["ok"] is True  # nothing minted: every supply is the recorded 0
    settled = run_cli("settle", env=env)
    assert settled.returncode == 0, settled.stderr
    assert json.loads(settled.stdout) == {"settled": 0}  # no household yet: nothing is due


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_treasury_create_makes_a_safe_of_operators_and_an_external_key_once(
    database_url: str, tmp_path: Path, anvil: object
) -> None:
    from eth_account import Account

    env = _on_node(database_url, tmp_path, anvil)
    for email in ("ops1@example.com", "ops2@example.com"):
        made = run_cli("admin", "create", "--email", email, "--password", "operator-pass", env=env)
        assert made.returncode == 0, made.stderr
    external = Account.create().address
    owners = ["--owner", "ops1@example.com", "--owner", "ops2@example.com", "--owner", external]
    created = run_cli("treasury", "create", *owners, "--threshold", "2", env=env)
    assert created.returncode == 0, created.stderr
    treasury = json.loads(created.stdout)
    assert treasury["status"] == "active"
    assert treasury["threshold"] == 2
    assert external in treasury["owners"]
    assert len(treasury["owners"]) == 3
    again = run_cli("treasury", "create", "--owner", external, "--threshold", "1", env=env)
    assert again.returncode == 2
    assert "already has a treasury" in again.stderr
    plain = run_cli("treasury", "create", "--owner", "nobody@example.com", env=env)
    assert plain.returncode == 2


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_analytics_rebuild_computes_the_series_from_their_sources(
    database_url: str, tmp_path: Path, anvil: object
) -> None:
    env = _on_node(database_url, tmp_path, anvil)
    made = run_cli(
        "admin", "create", "--email", "ops@example.com", "--password", "operator-pass", env=env
    )
    assert made.returncode == 0, made.stderr
    rebuilt = run_cli("analytics", "rebuild", env=env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert json.loads(rebuilt.stdout) == {"points": 1}  # one registration, in its hour
    again = run_cli("analytics", "rebuild", env=env)
    assert json.loads(again.stdout) == {"points": 1}
