"""A real `mornet up` process on embedded defaults, for the tests that drive it from outside
(the browser, the OpenAPI contract run)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.brokers import free_port


@contextmanager
def running_platform(data_dir: Path, *, admin: tuple[str, str]) -> Iterator[str]:
    """Start the platform with an admin account in `data_dir`; yields its base URL."""
    env = {
        **os.environ,
        "MORNET_DATA_DIR": str(data_dir),
        "MORNET_ANVIL_PORT": str(free_port()),
        "MORNET_MQTT_PORT": str(free_port()),
    }
    env.pop("MORNET_DATABASE_URL", None)
    email, password = admin
    created = subprocess.run(
        [
            sys.executable,
            "-m",
            "mornet",
            "admin",
            "create",
            "--email",
            email,
            "--password",
            password,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    port = free_port()
    log = (data_dir / "up.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "mornet", "up", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("mornet up did not start:\n" + Path(log.name).read_text())
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()
