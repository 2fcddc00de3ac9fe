"""The chain client's connection to the node: kept alive, and balance reads straight through."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import pytest
from eth_account import Account
from web3.exceptions import Web3RPCError

from mornet.chain.client import ChainClient
from mornet.chain.service import ChainHandle


class CountingProxy:
    """A TCP proxy in front of the node that counts the connections made through it."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except ConnectionError:
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()


async def test_the_client_keeps_its_connection_to_the_node(chain: ChainHandle) -> None:
    """web3's own HTTP session opens a TCP connection per request; ours keeps one alive."""
    node = urlsplit(chain.client.rpc_url)
    proxy = CountingProxy(node.hostname or "127.0.0.1", node.port or 8545)
    url = await proxy.start()
    client = await ChainClient.connect(url, Account.create().key.hex())
    try:
        handle = ChainHandle(client, chain.contracts, chain.submitter)
        holder = Account.create().address
        for _ in range(40):
            assert await handle.balance_of("GCC", holder) == 0
        assert await client.w3.eth.block_number >= 0  # web3's own calls share the session
        assert proxy.connections <= 2
    finally:
        await client.close()
        await proxy.stop()


async def test_balances_read_in_one_batch_equal_the_contract_answers(chain: ChainHandle) -> None:
    address = Account.create().address
    token = chain.client.token(chain.contracts["GCC"])
    expected = await token.functions.balanceOf(address).call()
    pairs = [("GCC", address), ("E", chain.signer), ("GCC", chain.signer)]
    balances = await chain.balances_of(pairs)
    assert balances[0] == expected == 0
    for (symbol, holder), balance in zip(pairs, balances, strict=True):
        contract = chain.client.token(chain.contracts[symbol])
        assert balance == await contract.functions.balanceOf(holder).call()
    assert await chain.balance_of("E", chain.signer) == balances[1]


async def test_a_failed_call_raises_instead_of_reading_zero(chain: ChainHandle) -> None:
    with pytest.raises(Web3RPCError):
        # a malformed address as the contract: the node answers with an error
        await chain.client.call_uint("0x1234", b"\x70\xa0\x82\x31")
