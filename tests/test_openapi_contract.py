"""The OpenAPI document tells the truth: Schemathesis runs every check against a live
`mornet up` (fixed seed, bounded examples) and finds no failure. A generated client can trust
the document: each error an operation may answer is declared with the error schema, and every
value the schema allows is accepted unless `schemathesis.toml` names the rule that the schema
cannot express."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from mornet.bench.harness import running_platform

ROOT = Path(__file__).resolve().parents[1]
SCHEMATHESIS = Path(sys.executable).with_name("st")
ADMIN = ("contract@example.com", "contract-password")


def test_the_openapi_document_matches_what_the_api_does(tmp_path: Path) -> None:
    with running_platform(tmp_path / "platform", admin=ADMIN) as base:
        login = httpx.post(
            f"{base}/api/auth/login", json={"email": ADMIN[0], "password": ADMIN[1]}, timeout=30
        )
        assert login.status_code == 200, login.text
        run = subprocess.run(
            [
                str(SCHEMATHESIS),
                "run",
                f"{base}/openapi.json",
                "--checks",
                "all",
                "--seed",
                "1",
                "--max-examples",
                "10",
                "--header",
                f"Authorization: Bearer {login.json()['access_token']}",
                # Logging out revokes the token the rest of the run uses.
                "--exclude-path",
                "/api/auth/logout",
                "--no-color",
            ],
            cwd=ROOT,  # reads schemathesis.toml
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
    assert "passed" in run.stdout
