"""The local anvil node the embedded mode runs, with its state kept in the data directory."""

from __future__ import annotations

import glob
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import structlog

log = structlog.get_logger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[3]
LOCAL_CHAIN_ID = 31337


class NodeError(RuntimeError):
    pass


def find_anvil(configured: str | None = None) -> str:
    """The anvil binary: configured, installed by the setup under .tools/, or on the PATH."""
    if configured:
        return configured
    # The npm package ships the binary in a per-platform package; run it directly so that
    # signals reach anvil itself (its node wrapper would swallow them).
    installed = sorted(
        glob.glob(str(REPO_ROOT / ".tools/node_modules/@foundry-rs/anvil-*/bin/anvil"))
    )
    if installed:
        return installed[0]
    found = shutil.which("anvil")
    if found:
        return found
    raise NodeError(
        "anvil not found: run scripts/up (it installs the npm package @foundry-rs/anvil "
        "under .tools/) or set MORNET_ANVIL_BIN or MORNET_CHAIN_RPC_URL"
    )


class LocalNode:
    """An anvil process. With `state_file`, the chain is loaded from it at start and written
    back periodically and on a clean stop, so balances survive restarts."""

    def __init__(
        self,
        *,
        port: int,
        state_file: Path | None = None,
        binary: str | None = None,
        chain_id: int = LOCAL_CHAIN_ID,
    ) -> None:
        self.port = port
        self.state_file = state_file
        self.binary = find_anvil(binary)
        self.chain_id = chain_id
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> None:
        args = [
            self.binary,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--chain-id",
            str(self.chain_id),
            "--accounts",
            "1",
            "--silent",
            # Keep only the last 64 states, in memory: nothing here reads an old block's state,
            # and anvil would otherwise write them under ~/.foundry/anvil/tmp, gigabytes per
            # long run. Not fewer: a read at `latest` racing a new block names the previous one.
            "--prune-history",
            "64",
        ]
        if self.state_file is not None:
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            args += ["--state", str(self.state_file), "--state-interval", "1"]
        # The binary is the operator's own configuration, not request input.
        self.process = subprocess.Popen(  # noqa: S603
            args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                error = self.process.stderr.read().decode() if self.process.stderr else ""
                raise NodeError(f"anvil exited at start: {error.strip()}")
            try:
                response = httpx.post(
                    self.rpc_url,
                    json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
                    timeout=1,
                )
                if response.status_code == 200:
                    log.info(
                        "chain.local_node_started", rpc_url=self.rpc_url, state=str(self.state_file)
                    )
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise NodeError(f"anvil did not answer on {self.rpc_url} within {timeout}s")

    def stop(self, timeout: float = 15) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()  # anvil writes its state on a clean exit
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
