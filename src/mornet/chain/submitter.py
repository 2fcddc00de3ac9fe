"""The one submitter of a signing key: turns queued operations into transactions exactly once.

Each step is durable before the next begins:
1. sign: pick the next nonce, sign, and commit the raw transaction with the operation (status
   `sent`) — before anything leaves the process;
2. broadcast the stored raw transaction;
3. confirm: read the receipt; once deep enough, mark the operation `confirmed` (or `failed`
   if it reverted).
A crash anywhere leaves an operation `queued` (nothing signed: sign again) or `sent` (the same
raw transaction, same nonce, is broadcast again until its receipt appears), so a move is never
lost and never doubled; the contract's batch id refuses a second execution besides.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from datetime import timedelta
from typing import Any

import structlog
from eth_abi.abi import encode as abi_encode
from eth_abi.exceptions import EncodingError
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from web3.exceptions import (
    ContractLogicError,
    MismatchedABI,
    TransactionNotFound,
    Web3Exception,
    Web3ValidationError,
)
from web3.types import Nonce, TxParams

from mornet import outbox
from mornet.chain import repository
from mornet.chain.balances import BalanceBook
from mornet.chain.client import ChainClient
from mornet.chain.events import OperationFinished
from mornet.chain.models import ChainOperation, OperationKind, OperationStatus, SubmitterLease
from mornet.db import unit_of_work, utcnow

log = structlog.get_logger(__name__)


async def finish(
    session: AsyncSession,
    operation: ChainOperation,
    status: OperationStatus,
    *,
    error: str | None = None,
) -> None:
    """Make an operation final and tell the other contexts, in the same transaction."""
    operation.status = status
    operation.error = error[:1000] if error is not None else None
    operation.finished_at = utcnow()
    await announce_finished(session, operation)


async def announce_finished(session: AsyncSession, operation: ChainOperation) -> None:
    """Record that `operation` became final (its status says how)."""
    await outbox.record(
        session,
        OperationFinished(
            operation_id=operation.id,
            idempotency_key=operation.idempotency_key,
            token=operation.token,
            kind=str(operation.kind),
            status="confirmed" if operation.status == OperationStatus.CONFIRMED else "failed",
            tx_hash=operation.tx_hash,
            error=operation.error,
        ),
    )


# What building a call raises for an operation no retry can fix (an amount beyond uint256, a
# malformed address): the operation fails instead of blocking the queue behind it.
_UNENCODABLE = (
    MismatchedABI,
    Web3ValidationError,
    EncodingError,
    ValueError,
    TypeError,
    OverflowError,
    KeyError,
)
# The token contract's batch functions (MornetToken.vy), by operation kind.
_BATCH_FUNCTIONS: dict[OperationKind, tuple[bytes, list[str]]] = {
    OperationKind.MINT: (
        keccak(text="mint_batch(bytes32,address[],uint256[])")[:4],
        ["bytes32", "address[]", "uint256[]"],
    ),
    OperationKind.BURN: (
        keccak(text="burn_batch(bytes32,address[],uint256[])")[:4],
        ["bytes32", "address[]", "uint256[]"],
    ),
    OperationKind.TRANSFER: (
        keccak(text="transfer_batch(bytes32,address[],address[],uint256[])")[:4],
        ["bytes32", "address[]", "address[]", "uint256[]"],
    ),
}


def batch_call_data(kind: OperationKind, batch_id: str, items: list[dict[str, Any]]) -> bytes:
    """The call data of a mint, burn or transfer batch. Each address is checked (a mixed-case
    one against its checksum) and each amount must fit a uint256, or this raises."""
    selector, types = _BATCH_FUNCTIONS[kind]
    amounts = [int(item["amount"]) for item in items]
    arguments: list[Any] = [HexBytes(batch_id)]
    if kind != OperationKind.MINT:
        arguments.append([item["from"] for item in items])
    if kind != OperationKind.BURN:
        arguments.append([item["to"] for item in items])
    arguments.append(amounts)
    return selector + abi_encode(types, arguments)


# Broadcast answers that mean "the node has it, or had it": the receipt decides.
_BENIGN_BROADCAST_ERRORS = (
    "already known",
    "nonce too low",
    "known transaction",
    "already imported",
)


class Submitter:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        client: ChainClient,
        contracts: dict[str, str],
        *,
        confirmations: int = 0,
        holder: str | None = None,
        lease_seconds: float = 30,
        book: BalanceBook | None = None,
    ) -> None:
        self.sessions = sessions
        self.book = book
        self.client = client
        self.contracts = contracts
        self.confirmations = confirmations
        self.signer = client.operator.address
        self.wake = asyncio.Event()
        # A restarted process on the same host and port takes its lease straight back.
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}"
        self.lease = timedelta(seconds=lease_seconds)

    async def hold_lease(self) -> bool:
        """Take or renew the signing key's lease; False while another submitter holds it."""
        now = utcnow()
        try:
            async with unit_of_work(self.sessions) as session:
                key = (self.client.chain_id, self.signer)
                lease = await session.get(SubmitterLease, key, with_for_update=True)
                if lease is None:
                    session.add(
                        SubmitterLease(
                            chain_id=key[0],
                            signer=key[1],
                            holder=self.holder,
                            expires_at=now + self.lease,
                        )
                    )
                elif lease.holder == self.holder or lease.expires_at < now:
                    lease.holder = self.holder
                    lease.expires_at = now + self.lease
                else:
                    return False
        except IntegrityError:
            return False  # another submitter inserted the lease first
        return True

    def _transaction_fields(self, operation: ChainOperation) -> TxParams:
        """The transaction's `from`, `to` and `data` (no `to`: a contract creation). A batch's
        call data is encoded here with eth-abi, once: web3's contract functions normalise and
        checksum every address again for each of estimate and build, which for a batch of 256
        accounts cost more than anvil executing it."""
        fields: TxParams = {"from": self.signer}
        if operation.kind == OperationKind.CALL:
            fields["data"] = HexBytes(operation.call_data or "0x")
            if operation.call_to is not None:
                fields["to"] = self.client.w3.to_checksum_address(operation.call_to)
            return fields
        fields["to"] = self.client.w3.to_checksum_address(self.contracts[operation.token])
        fields["data"] = HexBytes(
            batch_call_data(operation.kind, operation.batch_id, operation.items)
        )
        return fields

    async def _still_hold_lease(self, session: AsyncSession) -> bool:
        """Renew the lease inside the caller's transaction, only if it is still ours. As a
        write it locks the lease row (PostgreSQL) or the database (SQLite) until the caller
        commits, so no rival can take the lease between this check and that commit."""
        renewed = await session.execute(
            update(SubmitterLease)
            .where(
                SubmitterLease.chain_id == self.client.chain_id,
                SubmitterLease.signer == self.signer,
                SubmitterLease.holder == self.holder,
                SubmitterLease.expires_at > utcnow(),
            )
            .values(expires_at=utcnow() + self.lease)
        )
        return bool(getattr(renewed, "rowcount", 0) == 1)

    @staticmethod
    async def _fail(session: AsyncSession, operation: ChainOperation, reason: str) -> None:
        await finish(session, operation, OperationStatus.FAILED, error=reason)
        log.warning("chain.operation_failed", id=str(operation.id), error=operation.error)

    async def _executed_on_chain(self, operation: ChainOperation) -> bool:
        if operation.kind == OperationKind.CALL:
            return False  # a call carries no batch id; its contract guards a replay
        token = self.client.token(self.contracts[operation.token])
        executed: bool = await token.functions.batch_executed(HexBytes(operation.batch_id)).call()
        return executed

    async def sign_next(self) -> uuid.UUID | None:
        """Sign the oldest queued operation and commit it as `sent`. Returns its id, or None
        when nothing is queued or the lease was lost. An operation that can never succeed
        (it cannot be encoded, or the contract refuses it) fails here, unsent, with the
        reason, and the queue moves on."""
        if not await self.hold_lease():
            return None
        async with unit_of_work(self.sessions) as session:
            queued = await repository.operations_in_status(
                session,
                chain_id=self.client.chain_id,
                signer=self.signer,
                status=OperationStatus.QUEUED,
                limit=1,
            )
            if not queued:
                return None
            operation = queued[0]
            try:
                fields = self._transaction_fields(operation)
            except _UNENCODABLE as exc:
                await self._fail(session, operation, f"the operation cannot be encoded: {exc}")
                return operation.id
            try:
                gas = await self.client.w3.eth.estimate_gas(fields, "pending")
            except ContractLogicError as exc:
                if await self._executed_on_chain(operation):
                    # Another submitter's transaction already carried this batch.
                    await self._confirm_elsewhere(session, operation)
                    return operation.id
                await self._fail(
                    session, operation, f"rejected by the contract: {exc.message or exc}"
                )
                return operation.id
            highest = await repository.highest_nonce(
                session, chain_id=self.client.chain_id, signer=self.signer
            )
            chain_nonce = await self.client.w3.eth.get_transaction_count(self.signer, "pending")
            nonce = max(chain_nonce, (highest + 1) if highest is not None else 0)
            tx: TxParams = {
                **fields,
                "nonce": Nonce(nonce),
                "gas": gas * 6 // 5 + 20_000,
                "gasPrice": await self.client.w3.eth.gas_price,
                "chainId": self.client.chain_id,
            }
            signed = self.client.operator.sign_transaction(tx)  # type: ignore[arg-type]
            # The RPC calls above may have taken as long as the lease: sign only if the key
            # is still ours, and only if no one else moved the operation on meanwhile.
            if not await self._still_hold_lease(session):
                log.warning("chain.lease_lost_before_signing", id=str(operation.id))
                await session.rollback()
                return None
            moved = await session.execute(
                update(ChainOperation)
                .where(
                    ChainOperation.id == operation.id,
                    ChainOperation.status == OperationStatus.QUEUED,
                )
                .values(
                    nonce=nonce,
                    raw_tx=signed.raw_transaction.to_0x_hex(),
                    tx_hash=signed.hash.to_0x_hex(),
                    status=OperationStatus.SENT,
                    sent_at=utcnow(),
                    attempts=ChainOperation.attempts + 1,
                )
                .execution_options(synchronize_session=False)
            )
            if getattr(moved, "rowcount", 0) != 1:
                await session.rollback()
                return None
            return operation.id

    @staticmethod
    async def _confirm_elsewhere(session: AsyncSession, operation: ChainOperation) -> None:
        await finish(
            session,
            operation,
            OperationStatus.CONFIRMED,
            error="executed by an earlier transaction of the same batch",
        )
        log.warning("chain.batch_executed_elsewhere", id=str(operation.id))

    async def broadcast(self, operation_id: uuid.UUID) -> None:
        async with self.sessions() as session:
            operation = await repository.operation(session, operation_id)
            if (
                operation is None
                or operation.status != OperationStatus.SENT
                or not operation.raw_tx
            ):
                return
            raw = HexBytes(operation.raw_tx)
        await self._send_raw(raw, operation_id)

    async def _send_raw(self, raw: HexBytes, operation_id: uuid.UUID) -> None:
        try:
            await self.client.w3.eth.send_raw_transaction(raw)
        except (Web3Exception, ValueError) as exc:
            if not any(marker in str(exc).lower() for marker in _BENIGN_BROADCAST_ERRORS):
                log.warning("chain.broadcast_failed", id=str(operation_id), error=str(exc))

    async def confirm_sent(self) -> int:
        """Settle `sent` operations from their receipts; re-broadcast the ones the node lost.
        Returns how many became final."""
        finished = 0
        async with unit_of_work(self.sessions) as session:
            sent = await repository.operations_in_status(
                session,
                chain_id=self.client.chain_id,
                signer=self.signer,
                status=OperationStatus.SENT,
                limit=500,
            )
            if not sent:
                return 0
            head = await self.client.w3.eth.block_number
            confirmed_nonce = await self.client.w3.eth.get_transaction_count(self.signer, "latest")
            for operation in sent:
                assert operation.tx_hash is not None
                assert operation.raw_tx is not None
                try:
                    receipt = await self.client.w3.eth.get_transaction_receipt(
                        HexBytes(operation.tx_hash)
                    )
                except TransactionNotFound:
                    if operation.nonce is not None and operation.nonce < confirmed_nonce:
                        # Our nonce was used by a transaction that is not ours.
                        await finish(
                            session,
                            operation,
                            OperationStatus.FAILED,
                            error="the nonce was consumed by another transaction",
                        )
                        finished += 1
                        log.error("chain.nonce_taken", id=str(operation.id), nonce=operation.nonce)
                    else:
                        await self._send_raw(HexBytes(operation.raw_tx), operation.id)
                    continue
                if head - receipt["blockNumber"] < self.confirmations:
                    continue
                operation.block_number = receipt["blockNumber"]
                if receipt.get("contractAddress"):
                    operation.created_address = str(receipt["contractAddress"])
                if receipt["status"] == 1:
                    if self.book is not None:  # the moves show at once, not at the next look
                        self.book.forget_moved(receipt["logs"])
                    await finish(session, operation, OperationStatus.CONFIRMED)
                elif await self._executed_on_chain(operation):
                    # Reverted as "batch already executed": the move happened, once, in an
                    # earlier transaction. It is confirmed, never failed.
                    await self._confirm_elsewhere(session, operation)
                else:
                    await finish(
                        session,
                        operation,
                        OperationStatus.FAILED,
                        error="the transaction reverted on chain",
                    )
                finished += 1
        return finished

    async def run_once(self) -> int:
        """One round: settle what was sent, then sign and send everything queued — if this
        submitter holds the key's lease."""
        if not await self.hold_lease():
            return 0
        progressed = await self.confirm_sent()
        while (operation_id := await self.sign_next()) is not None:
            await self.broadcast(operation_id)
            progressed += 1
        return progressed + await self.confirm_sent()

    async def drain(self, max_seconds: float = 60) -> None:
        """Run until no operation of this signer is queued or sent (tests, benchmarks, CLI)."""
        deadline = asyncio.get_running_loop().time() + max_seconds
        while True:
            await self.run_once()
            async with self.sessions() as session:
                still_open = await repository.has_open_operations(
                    session, chain_id=self.client.chain_id, signer=self.signer
                )
            if not still_open:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("chain operations still open after the drain timeout")
            await asyncio.sleep(0.05)

    async def run_forever(self, idle_seconds: float = 0.5) -> None:
        """The embedded mode's background loop; `wake` cuts the idle wait short."""
        while True:
            try:
                progressed = await self.run_once()
            except Exception:
                log.exception("chain.submitter_round_failed")
                progressed = 0
            if not progressed:
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout=idle_seconds)
