from __future__ import annotations

import httpx
import pytest

from mornet.chain.service import ChainHandle
from mornet.runtime import Runtime
from tests.bank.flows import sandbox_of


@pytest.fixture
async def banking(runtime: Runtime, chain: ChainHandle, client: httpx.AsyncClient) -> Runtime:
    """The platform with its sandbox bank, on a real chain; tests drive the relay, the
    submitter and the payouts themselves (`flows.settle`)."""
    await runtime.start_events(run_relay=False)
    sandbox_of(runtime).retry_seconds = 0.01
    return runtime
