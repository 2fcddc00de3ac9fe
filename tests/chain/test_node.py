"""The local node the embedded platform and the tests run on."""

import asyncio
from typing import Any

import httpx

from mornet.chain.node import LocalNode
from tests.brokers import free_port

DEAD = "0x000000000000000000000000000000000000dEaD"


async def test_reads_at_latest_never_miss_while_blocks_are_mined() -> None:
    """A read at `latest` racing a new block must still find the state it names.

    With history pruned down to the head alone, anvil answered such reads with
    `BlockOutOfRangeError` (a balance read failing in the submitter's tests)."""
    node = LocalNode(port=free_port())
    node.start()
    failures: list[str] = []
    try:
        async with httpx.AsyncClient(timeout=10) as client:

            async def rpc(method: str, params: list[Any]) -> dict[str, Any]:
                request = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
                answer: dict[str, Any] = (await client.post(node.rpc_url, json=request)).json()
                return answer

            sender = (await rpc("eth_accounts", []))["result"][0]
            transfer = {"from": sender, "to": DEAD, "value": "0x1"}
            balance_call = {"to": DEAD, "data": "0x70a08231"}

            async def mine() -> None:
                for _ in range(400):
                    await rpc("eth_sendTransaction", [transfer])

            async def read() -> None:
                for _ in range(1200):
                    answer = await rpc("eth_call", [balance_call, "latest"])
                    if "error" in answer:
                        failures.append(answer["error"]["message"])

            await asyncio.gather(mine(), read(), read())
    finally:
        node.stop()
    assert failures == []
