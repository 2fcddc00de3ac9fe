"""Exactly-once on-chain moves: the submitter stopped at every step and started again."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from eth_abi.exceptions import EncodingError
from eth_account import Account
from hexbytes import HexBytes
from sqlalchemy.ext.asyncio import AsyncSession
from web3 import Web3

from mornet.chain import service as chain_service
from mornet.chain.client import ChainClient
from mornet.chain.contracts import compiled_token
from mornet.chain.models import ChainOperation, OperationKind, OperationStatus
from mornet.chain.node import LocalNode
from mornet.chain.service import ChainHandle
from mornet.chain.submitter import Submitter, batch_call_data
from mornet.config import Settings
from mornet.db import unit_of_work
from mornet.runtime import Runtime
from tests.polling import eventually

UNIT = 10**18


async def _queue_mint(runtime: Runtime, handle: ChainHandle, receiver: str, key: str) -> uuid.UUID:
    async with unit_of_work(runtime.sessions) as session:
        operation, created = await chain_service.enqueue(
            session,
            chain_id=handle.chain_id,
            signer=handle.signer,
            token="GCC",
            kind=OperationKind.MINT,
            moves=[chain_service.Move(amount=5 * UNIT, receiver=receiver)],
            idempotency_key=key,
        )
        assert created
        return operation.id


def _restarted(runtime: Runtime, handle: ChainHandle) -> Submitter:
    """A new submitter process: nothing but the database and the chain carry over."""
    return Submitter(
        runtime.sessions, handle.client, handle.contracts, holder=handle.submitter.holder
    )


async def _load(session: AsyncSession, operation_id: uuid.UUID) -> ChainOperation:
    session.expire_all()
    return await chain_service.get_operation(session, operation_id)


async def test_killed_after_signing_before_sending(
    runtime: Runtime, chain: ChainHandle, session: AsyncSession
) -> None:
    receiver = Account.create().address
    operation_id = await _queue_mint(runtime, chain, receiver, "crash-before-send")
    assert await chain.submitter.sign_next() == operation_id  # …and the process dies here
    signed = await _load(session, operation_id)
    assert signed.status == OperationStatus.SENT
    assert await chain.balance_of("GCC", receiver) == 0

    await _restarted(runtime, chain).drain()
    done = await _load(session, operation_id)
    assert done.status == OperationStatus.CONFIRMED
    assert done.tx_hash == signed.tx_hash
    assert done.nonce == signed.nonce
    assert await chain.balance_of("GCC", receiver) == 5 * UNIT
    assert await chain.total_supply("GCC") == 5 * UNIT


async def test_killed_between_send_and_receipt(
    runtime: Runtime, chain: ChainHandle, session: AsyncSession
) -> None:
    receiver = Account.create().address
    operation_id = await _queue_mint(runtime, chain, receiver, "crash-before-receipt")
    assert await chain.submitter.sign_next() == operation_id
    await chain.submitter.broadcast(operation_id)  # mined; the process dies before the receipt

    async def mined() -> bool:  # anvil mines right after accepting it, not before answering
        return await chain.balance_of("GCC", receiver) == 5 * UNIT

    await eventually(mined, within=10)
    assert (await _load(session, operation_id)).status == OperationStatus.SENT

    restarted = _restarted(runtime, chain)
    await restarted.drain()
    await restarted.drain()
    done = await _load(session, operation_id)
    assert done.status == OperationStatus.CONFIRMED
    assert done.attempts == 1
    assert done.block_number is not None
    assert await chain.balance_of("GCC", receiver) == 5 * UNIT
    assert await chain.total_supply("GCC") == 5 * UNIT


async def test_a_rebroadcast_of_the_same_transaction_moves_nothing_twice(
    runtime: Runtime, chain: ChainHandle, session: AsyncSession
) -> None:
    receiver = Account.create().address
    operation_id = await _queue_mint(runtime, chain, receiver, "rebroadcast")
    await chain.submitter.sign_next()
    for _ in range(3):
        await chain.submitter.broadcast(operation_id)
    await chain.submitter.drain()
    raw = HexBytes((await _load(session, operation_id)).raw_tx or "")
    await chain.submitter._send_raw(raw, operation_id)  # a late duplicate from the network
    assert await chain.balance_of("GCC", receiver) == 5 * UNIT


async def test_a_database_restored_from_before_the_move_cannot_repeat_it(
    runtime: Runtime, chain: ChainHandle, session: AsyncSession
) -> None:
    receiver = Account.create().address
    operation_id = await _queue_mint(runtime, chain, receiver, "restored")
    await chain.submitter.drain()
    # A backup from before the send is restored: the outbox thinks nothing was sent.
    async with unit_of_work(runtime.sessions) as writer:
        operation = await chain_service.get_operation(writer, operation_id)
        operation.status = OperationStatus.QUEUED
        operation.nonce = operation.tx_hash = operation.raw_tx = None
    await _restarted(runtime, chain).drain()
    again = await _load(session, operation_id)
    # The move happened once, earlier: it is confirmed (never failed), and not repeated.
    assert again.status == OperationStatus.CONFIRMED
    assert "executed by an earlier transaction" in (again.error or "")
    assert await chain.balance_of("GCC", receiver) == 5 * UNIT
    assert await chain.total_supply("GCC") == 5 * UNIT


async def test_operations_go_out_in_order_with_consecutive_nonces(
    runtime: Runtime, chain: ChainHandle, session: AsyncSession
) -> None:
    receivers = [Account.create().address for _ in range(5)]
    ids = [await _queue_mint(runtime, chain, r, f"ordered-{i}") for i, r in enumerate(receivers)]
    await chain.submitter.drain()
    nonces = [(await _load(session, i)).nonce for i in ids]
    assert nonces == list(range(nonces[0] or 0, (nonces[0] or 0) + 5))
    for receiver in receivers:
        assert await chain.balance_of("GCC", receiver) == 5 * UNIT


async def test_balances_survive_a_restart_of_the_embedded_chain(
    tmp_path: object, database_url: str
) -> None:
    from pathlib import Path

    from tests.conftest import free_port

    data_dir = Path(str(tmp_path)) / "embedded"
    settings = Settings(data_dir=data_dir, database_url=database_url, anvil_port=free_port())
    receiver = Account.create().address

    first = Runtime.from_settings(settings)
    try:
        handle = await first.start_chain(run_submitter=False)
        contracts = dict(handle.contracts)
        await _queue_mint(first, handle, receiver, "persisted")
        await handle.submitter.drain()
        assert await handle.balance_of("GCC", receiver) == 5 * UNIT
    finally:
        await first.close()  # stops anvil, which writes its state to the data directory
    assert (data_dir / "chain" / "anvil-state.json").exists()

    second = Runtime.from_settings(settings)
    try:
        handle = await second.start_chain(run_submitter=False)
        assert handle.contracts == contracts  # found, not redeployed
        assert await handle.balance_of("GCC", receiver) == 5 * UNIT
        assert await handle.total_supply("GCC") == 5 * UNIT
    finally:
        await second.close()


async def test_only_the_lease_holder_signs_for_a_key(
    runtime: Runtime, chain: ChainHandle, session: AsyncSession
) -> None:
    receiver = Account.create().address
    operation_id = await _queue_mint(runtime, chain, receiver, "leased")
    assert await chain.submitter.hold_lease()
    rival = Submitter(runtime.sessions, chain.client, chain.contracts, holder="other-host:1")
    assert await rival.run_once() == 0
    assert (await _load(session, operation_id)).status == OperationStatus.QUEUED
    assert await chain.balance_of("GCC", receiver) == 0

    await chain.submitter.drain()
    assert (await _load(session, operation_id)).status == OperationStatus.CONFIRMED
    assert not await rival.hold_lease()
    # The holder dies and its lease runs out: another process takes over.
    last_renewal = Submitter(
        runtime.sessions,
        chain.client,
        chain.contracts,
        holder=chain.submitter.holder,
        lease_seconds=-1,
    )
    assert await last_renewal.hold_lease()
    assert await rival.hold_lease()
    assert not await chain.submitter.hold_lease()


async def test_an_operation_counts_only_at_the_configured_depth(
    runtime: Runtime, chain: ChainHandle, session: AsyncSession
) -> None:
    deep = Submitter(
        runtime.sessions,
        chain.client,
        chain.contracts,
        confirmations=2,
        holder=chain.submitter.holder,
    )
    operation_id = await _queue_mint(runtime, chain, Account.create().address, "deep")
    await deep.run_once()
    assert (await _load(session, operation_id)).status == OperationStatus.SENT
    await chain.client.w3.provider.make_request("anvil_mine", [1])  # type: ignore[arg-type]
    await deep.run_once()
    assert (await _load(session, operation_id)).status == OperationStatus.SENT
    await chain.client.w3.provider.make_request("anvil_mine", [1])  # type: ignore[arg-type]
    await deep.run_once()
    assert (await _load(session, operation_id)).status == OperationStatus.CONFIRMED


async def test_an_operation_that_can_never_be_encoded_fails_and_the_next_one_confirms(
    runtime: Runtime, chain: ChainHandle, session: AsyncSession
) -> None:
    receiver = Account.create().address
    async with unit_of_work(runtime.sessions) as writer:
        poison, _ = await chain_service.enqueue(
            writer,
            chain_id=chain.chain_id,
            signer=chain.signer,
            token="GCC",
            kind=OperationKind.MINT,
            moves=[chain_service.Move(amount=10**78, receiver=receiver)],  # > 2^256
            idempotency_key="poison",
        )
    following = await _queue_mint(runtime, chain, receiver, "after-the-poison")
    await chain.submitter.drain(max_seconds=30)
    failed = await _load(session, poison.id)
    assert failed.status == OperationStatus.FAILED
    assert failed.error is not None
    assert "cannot be encoded" in failed.error
    assert failed.tx_hash is None  # never signed
    assert (await _load(session, following)).status == OperationStatus.CONFIRMED
    assert await chain.balance_of("GCC", receiver) == 5 * UNIT


async def test_two_submitters_and_a_slow_rpc_never_sign_one_operation_twice(
    runtime: Runtime, chain: ChainHandle, session: AsyncSession, anvil: LocalNode
) -> None:
    receiver = Account.create().address
    operation_id = await _queue_mint(runtime, chain, receiver, "contended")
    slow_client = await ChainClient.connect(anvil.rpc_url, runtime.secrets.chain_operator_key)
    real_count = slow_client.w3.eth.get_transaction_count
    stalled = asyncio.Event()

    async def slow_count(*args: Any, **kwargs: Any) -> Any:
        stalled.set()
        await asyncio.sleep(2.5)  # longer than the lease
        return await real_count(*args, **kwargs)

    slow_client.w3.eth.get_transaction_count = slow_count  # type: ignore[method-assign]
    slow = Submitter(
        runtime.sessions, slow_client, chain.contracts, holder="slow-host:1", lease_seconds=1
    )
    fast = Submitter(
        runtime.sessions, chain.client, chain.contracts, holder="fast-host:2", lease_seconds=1
    )
    try:
        slow_signing = asyncio.create_task(slow.sign_next())
        await asyncio.wait_for(stalled.wait(), 10)
        await asyncio.sleep(1.2)  # the slow one's lease runs out while it waits on the RPC
        await fast.drain(max_seconds=20)
        assert await slow_signing is None  # it lost the lease: it signed nothing
    finally:
        await slow_client.close()
    done = await _load(session, operation_id)
    assert done.status == OperationStatus.CONFIRMED
    assert done.attempts == 1
    assert await chain.balance_of("GCC", receiver) == 5 * UNIT
    assert await chain.total_supply("GCC") == 5 * UNIT


async def test_the_rpc_url_is_never_logged_with_its_credentials(
    settings: Settings, anvil: LocalNode
) -> None:
    from structlog.testing import capture_logs

    runtime = Runtime.from_settings(settings)
    try:
        with capture_logs() as logs:
            await runtime.start_chain(
                rpc_url=f"http://operator:s3cret-token@127.0.0.1:{anvil.port}",
                run_submitter=False,
            )
        ready = [e for e in logs if e["event"] == "chain.ready"]
        assert ready
        assert ready[0]["rpc_url"] == f"http://127.0.0.1:{anvil.port}"
        assert "s3cret-token" not in repr(logs)
    finally:
        await runtime.close()


async def test_a_requested_move_wakes_the_submitter_only_once_committed(
    runtime: Runtime, chain: ChainHandle
) -> None:
    """Woken before the commit, the submitter could look for the operation, not find it, and
    sleep on it; a rolled-back request must not wake it at all."""
    receiver = Account.create().address
    move = chain_service.Move(amount=10**18, receiver=receiver)
    chain.submitter.wake.clear()
    async with runtime.sessions() as session:
        await chain_service.request(
            session,
            chain,
            token="GCC",
            kind=OperationKind.MINT,
            moves=[move],
            idempotency_key="rolled-back",
        )
        assert not chain.submitter.wake.is_set()
        await session.rollback()
    assert not chain.submitter.wake.is_set()

    async with runtime.sessions() as session:
        operation, created = await chain_service.request(
            session,
            chain,
            token="GCC",
            kind=OperationKind.MINT,
            moves=[move],
            idempotency_key="committed",
        )
        assert created
        await session.flush()
        assert not chain.submitter.wake.is_set()
        await session.commit()
    assert chain.submitter.wake.is_set()
    async with runtime.sessions() as session:
        stored = await session.get(ChainOperation, operation.id)
        assert stored is not None
        assert stored.status == OperationStatus.QUEUED

    # A retry of the same request creates nothing and so wakes nothing.
    chain.submitter.wake.clear()
    async with runtime.sessions() as session:
        _, created = await chain_service.request(
            session,
            chain,
            token="GCC",
            kind=OperationKind.MINT,
            moves=[move],
            idempotency_key="committed",
        )
        await session.commit()
    assert not created
    assert not chain.submitter.wake.is_set()


async def _announced(runtime: Runtime) -> dict[str, dict[str, Any]]:
    """The `chain.operation.finished` events recorded, by idempotency key."""
    from sqlalchemy import select

    from mornet.chain.events import OperationFinished
    from mornet.outbox import OutboxEvent

    async with runtime.sessions() as session:
        rows = await session.scalars(
            select(OutboxEvent).where(OutboxEvent.topic == OperationFinished.topic)
        )
        announced: dict[str, dict[str, Any]] = {}
        for row in rows:
            key = row.payload["idempotency_key"]
            assert key not in announced, f"{key} was announced twice"
            announced[key] = row.payload
        return announced


async def test_every_operation_is_announced_once_when_final_with_its_outcome(
    runtime: Runtime, chain: ChainHandle
) -> None:
    """The other contexts (bank, settlement, market) learn a move's outcome from this event,
    recorded in the transaction that made the operation final."""
    receiver = Account.create().address
    async with unit_of_work(runtime.sessions) as writer:
        await chain_service.enqueue(
            writer,
            chain_id=chain.chain_id,
            signer=chain.signer,
            token="GCC",
            kind=OperationKind.MINT,
            moves=[chain_service.Move(amount=10**78, receiver=receiver)],
            idempotency_key="never-encodable",
        )
    confirmed = await _queue_mint(runtime, chain, receiver, "good")
    requester = uuid.uuid4()
    async with unit_of_work(runtime.sessions) as writer:
        cancelled, _ = await chain_service.enqueue(
            writer,
            chain_id=chain.chain_id,
            signer=chain.signer,
            token="GCC",
            kind=OperationKind.TRANSFER,
            moves=[chain_service.Move(amount=UNIT, sender=receiver, receiver=chain.signer)],
            idempotency_key="cancelled",
            requested_by=requester,
        )
        assert await _announced(runtime) == {}  # nothing is final yet (and not committed)
    async with unit_of_work(runtime.sessions) as writer:
        assert (
            await chain_service.cancel_queued_transfers(
                writer, requested_by=requester, reason="the user was blocked"
            )
            == 1
        )
    await chain.submitter.drain(max_seconds=30)
    await chain.submitter.run_once()  # nothing left: announces nothing more

    announced = await _announced(runtime)
    assert set(announced) == {"never-encodable", "good", "cancelled"}
    assert announced["good"]["status"] == "confirmed"
    assert announced["good"]["operation_id"] == str(confirmed)
    assert announced["good"]["tx_hash"]
    assert announced["never-encodable"]["status"] == "failed"
    assert "cannot be encoded" in announced["never-encodable"]["error"]
    assert announced["cancelled"]["status"] == "failed"
    assert announced["cancelled"]["operation_id"] == str(cancelled.id)
    assert announced["cancelled"]["error"] == "the user was blocked"


async def test_a_token_with_moves_but_no_recorded_contract_is_never_silently_replaced(
    runtime: Runtime, chain: ChainHandle, session: AsyncSession
) -> None:
    from sqlalchemy import delete

    from mornet.chain.models import ChainDeployment

    async with unit_of_work(runtime.sessions) as tx:
        await chain_service.request(
            tx,
            chain,
            token="E",
            kind=OperationKind.MINT,
            moves=[chain_service.Move(amount=10**18, receiver=Account.create().address)],
            idempotency_key=f"test:{uuid.uuid4()}",
        )
    await chain.submitter.drain()
    async with unit_of_work(runtime.sessions) as tx:
        await tx.execute(delete(ChainDeployment).where(ChainDeployment.token.in_(["E", "H"])))
    with pytest.raises(chain_service.ChainStateMismatch, match="E has recorded moves"):
        async with unit_of_work(runtime.sessions) as tx:
            await chain_service.ensure_deployed(tx, chain.client)
    async with runtime.sessions() as fresh:
        assert "E" not in await chain_service.contract_addresses(fresh, chain.chain_id)


@pytest.mark.parametrize("kind", [OperationKind.MINT, OperationKind.BURN, OperationKind.TRANSFER])
def test_a_batch_is_encoded_as_the_token_contract_expects(kind: OperationKind) -> None:
    """The submitter encodes batches itself; the bytes must be what web3 makes of the
    contract's ABI for the same call."""
    token = Web3().eth.contract(abi=compiled_token().abi)
    senders = [Account.create().address for _ in range(3)]
    receivers = [Account.create().address for _ in range(3)]
    amounts = [1, 5 * UNIT, 2**256 - 1]
    batch_id = chain_service.batch_id_for("a batch")
    items = [  # the stored case does not matter
        {"from": s.lower(), "to": r, "amount": str(a)}
        for s, r, a in zip(senders, receivers, amounts, strict=True)
    ]
    arguments: dict[OperationKind, tuple[str, list[Any]]] = {
        OperationKind.MINT: ("mint_batch", [batch_id, receivers, amounts]),
        OperationKind.BURN: ("burn_batch", [batch_id, senders, amounts]),
        OperationKind.TRANSFER: ("transfer_batch", [batch_id, senders, receivers, amounts]),
    }
    name, args = arguments[kind]
    expected = HexBytes(token.encode_abi(name, [HexBytes(batch_id), *args[1:]]))
    assert batch_call_data(kind, batch_id, items) == expected


@pytest.mark.parametrize(
    ("receiver", "amount"),
    [
        ("0x" + "ab" * 19, "1"),  # 19 bytes
        ("not an address", "1"),
        (Account.create().address, str(2**256)),  # beyond uint256
        (Account.create().address, "-1"),
    ],
)
def test_a_batch_that_cannot_be_encoded_is_refused(receiver: str, amount: str) -> None:
    with pytest.raises(EncodingError):
        batch_call_data(
            OperationKind.MINT,
            chain_service.batch_id_for("bad"),
            [{"from": None, "to": receiver, "amount": amount}],
        )
