"""Chain rules: deployments per chain, and the idempotent outbox of token operations."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Collection, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.chain import repository
from mornet.chain.balances import BalanceBook
from mornet.chain.client import ChainClient
from mornet.chain.contracts import MAX_BATCH, TOKENS
from mornet.chain.errors import ChainUnavailable
from mornet.chain.models import (
    ChainDeployment,
    ChainOperation,
    ChainOperationParty,
    OperationKind,
    OperationStatus,
)
from mornet.chain.schemas import (
    AddressEntry,
    BalanceMismatch,
    SupplyCheck,
    TokenReconciliation,
)
from mornet.chain.schemas import from_base_units as from_base_units  # part of this API too
from mornet.chain.schemas import to_base_units as to_base_units
from mornet.chain.submitter import Submitter, announce_finished
from mornet.changes import cached_read, topics_of
from mornet.db import set_after_commit, utcnow
from mornet.errors import Conflict, MornetError, NotFound, ValidationFailed

MOVE_TOPICS = topics_of(ChainOperation, ChainOperationParty)
"""The platform's recorded moves (history, moves in flight) change only when these move."""


class ChainStateMismatch(MornetError):
    status = 503
    code = "chain_state_mismatch"


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"

    def __init__(self) -> None:
        super().__init__("this idempotency key was already used for a different request")


@dataclass(frozen=True)
class Move:
    """One account's part in an operation, in base units (10^-18 of a token)."""

    amount: int
    sender: str | None = None
    receiver: str | None = None

    def as_item(self) -> dict[str, Any]:
        return {"from": self.sender, "to": self.receiver, "amount": str(self.amount)}


def keyless_address(label: str) -> str:
    """An address derived from a hash of `label`: nobody holds a key for it, so only the token
    contracts' minter moves tokens in and out, and anyone can read its balance (the platform's
    escrow, the treasury before it exists)."""
    return to_checksum_address(keccak(text=label)[-20:])


def batch_id_for(idempotency_key: str) -> str:
    return "0x" + keccak(text=idempotency_key).hex()


async def ensure_deployed(session: AsyncSession, client: ChainClient) -> dict[str, str]:
    """The token contracts on this chain, deploying what is missing (first start). It never
    replaces a contract: a recorded one that is gone, or a missing record of a token that
    has moves, stops the start with the reason."""
    recorded = {d.token: d for d in await repository.deployments(session, client.chain_id)}
    for deployment in recorded.values():
        if not await client.has_code(deployment.address):
            raise ChainStateMismatch(
                f"{deployment.token} is recorded at {deployment.address} on chain "
                f"{client.chain_id}, but no contract is there: the chain was reset or the "
                "database belongs to another chain",
            )
    for symbol, name in TOKENS.items():
        if symbol in recorded:
            continue
        if await repository.has_moves_of_token(session, client.chain_id, symbol):
            # Its holders' balances live in a contract this database forgot: a new one would
            # silently replace it (and start everyone at zero).
            raise ChainStateMismatch(
                f"{symbol} has recorded moves on chain {client.chain_id} but no recorded "
                "contract: restore its deployment record instead of deploying a new one",
            )
        address, tx_hash = await client.deploy_token(name, symbol)
        deployment = ChainDeployment(
            chain_id=client.chain_id,
            token=symbol,
            address=address,
            tx_hash=tx_hash,
            deployed_at=utcnow(),
        )
        session.add(deployment)
        await session.flush()
        recorded[symbol] = deployment
    return {symbol: recorded[symbol].address for symbol in TOKENS}


async def contract_addresses(session: AsyncSession, chain_id: int) -> dict[str, str]:
    return {d.token: d.address for d in await repository.deployments(session, chain_id)}


Call = tuple[str | None, bytes]
"""A call's contract (None: a creation) and its data."""


def _request_hash(
    token: str, kind: OperationKind, moves: Sequence[Move], call: Call | None = None
) -> str:
    content: dict[str, Any] = {
        "token": token,
        "kind": str(kind),
        "items": [m.as_item() for m in moves],
    }
    if call is not None:
        content["call"] = [call[0], call[1].hex()]
    canonical = json.dumps(content, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def enqueue(
    session: AsyncSession,
    *,
    chain_id: int,
    signer: str,
    token: str,
    kind: OperationKind,
    moves: Sequence[Move],
    idempotency_key: str,
    requested_by: uuid.UUID | None = None,
    call: Call | None = None,
) -> tuple[ChainOperation, bool]:
    """Record an operation once per idempotency key. Returns (operation, created). The same
    key with the same content returns the first operation; with other content it is refused.
    A call (kind CALL) may move no tokens; a token move names a token and 1 to 256 moves."""
    if token not in (TOKENS if call is None else {"", *TOKENS}):
        raise ValidationFailed(
            f"unknown token {token!r}: one of {', '.join(TOKENS)}", code="unknown_token"
        )
    if not (0 if call is not None else 1) <= len(moves) <= MAX_BATCH:
        raise ValidationFailed(f"a batch moves 1 to {MAX_BATCH} accounts", code="batch_size")
    if not idempotency_key.strip():
        raise ValidationFailed("an idempotency key is required", code="idempotency_key_missing")
    digest = _request_hash(token, kind, moves, call)
    existing = await repository.operation_by_key(session, idempotency_key)
    if existing is not None:
        if existing.request_hash != digest:
            raise IdempotencyKeyReused()
        return existing, False
    operation = ChainOperation(
        idempotency_key=idempotency_key,
        request_hash=digest,
        chain_id=chain_id,
        token=token,
        kind=kind,
        batch_id=batch_id_for(idempotency_key),
        items=[m.as_item() for m in moves],
        status=OperationStatus.QUEUED,
        signer=signer,
        attempts=0,
        requested_by=requested_by,
        call_to=call[0] if call is not None else None,
        call_data="0x" + call[1].hex() if call is not None else None,
        created_at=utcnow(),
    )
    parties = {a for m in moves for a in (m.sender, m.receiver) if a}
    try:
        async with session.begin_nested():
            session.add(operation)
            await session.flush()
            session.add_all(
                ChainOperationParty(operation_id=operation.id, address=a) for a in parties
            )
            await session.flush()
    except IntegrityError:
        # A concurrent request with the same key won the insert: answer as a retry would.
        existing = await repository.operation_by_key(session, idempotency_key)
        if existing is None:
            raise
        if existing.request_hash != digest:
            raise IdempotencyKeyReused() from None
        return existing, False
    return operation, True


async def cancel_queued_transfers(
    session: AsyncSession, *, requested_by: uuid.UUID, reason: str
) -> int:
    """Fail the transfers `requested_by` queued that are not signed yet. Returns how many.
    (The submitter moves only rows still `queued`, so none of these is sent afterwards.)"""
    failed = await repository.fail_queued(
        session,
        requested_by=requested_by,
        kind=OperationKind.TRANSFER,
        reason=reason,
        finished_at=utcnow(),
    )
    for operation in failed:
        await announce_finished(session, operation)
    return len(failed)


async def get_operation(session: AsyncSession, operation_id: uuid.UUID) -> ChainOperation:
    operation = await repository.operation(session, operation_id)
    if operation is None:
        raise NotFound("no such operation", code="operation_not_found")
    return operation


async def operations_of(
    session: AsyncSession, address: str, *, limit: int = 100
) -> Sequence[ChainOperation]:
    return await repository.operations_of_address(session, address, limit=limit)


async def pending_debits(session: AsyncSession, address: str, token: str) -> int:
    """Base units leaving `address` in operations not yet final (reserved against balance)."""
    total = 0
    for operation in await repository.open_operations_of_address(session, address, token):
        total += sum(int(i["amount"]) for i in operation.items if i["from"] == address)
    return total


V = TypeVar("V")


async def cached_with_shown_balances(
    session: AsyncSession,
    handle: ChainHandle | None,
    name: str,
    topics: tuple[str, ...],
    key: Hashable,
    read: Callable[[], Awaitable[V]],
    *,
    max_age: float,
) -> V:
    """`cached_read` for a value that shows the balance book's balances: kept also only while
    the book forgets nothing, and read every time while the book is not trusted (no book, or
    its watcher is behind)."""
    shown_balances = handle.shown_balances_version() if handle is not None else None
    if shown_balances is None:
        return await read()
    return await cached_read(
        session, name, topics, key, read, max_age=max_age, extra=shown_balances
    )


async def pending_debits_of(
    session: AsyncSession, addresses: Collection[str], tokens: Collection[str]
) -> dict[tuple[str, str], int]:
    """`pending_debits` of many (address, token) pairs in one query."""
    wanted = set(addresses)
    debits: dict[tuple[str, str], int] = defaultdict(int)
    for operation in await repository.open_operations(session):
        if operation.token not in tokens:
            continue
        for item in operation.items:
            if item["from"] in wanted:
                debits[(item["from"], operation.token)] += int(item["amount"])
    return debits


BALANCE_OF = keccak(text="balanceOf(address)")[:4]


def _balance_of_call(address: str) -> bytes:
    return BALANCE_OF + bytes.fromhex(address.removeprefix("0x")).rjust(32, b"\0")


@dataclass
class ChainHandle:
    """What the running platform holds of the chain: the connection, the contract addresses
    and the submitter that owns the operator key."""

    client: ChainClient
    contracts: dict[str, str]
    submitter: Submitter
    book: BalanceBook | None = None
    """Balances to show, kept while the chain shows no move of them (`balances.BalanceBook`)."""

    @property
    def chain_id(self) -> int:
        return self.client.chain_id

    @property
    def signer(self) -> str:
        return self.client.operator.address

    async def balance_of(self, token: str, address: str) -> int:
        """`balanceOf` as one raw `eth_call` (the call data encoded here: building a web3
        contract function per read costs more than the read)."""
        return await self.client.call_uint(
            to_checksum_address(self.contracts[token]), _balance_of_call(address)
        )

    async def balances_of(self, pairs: Sequence[tuple[str, str]]) -> list[int]:
        """The balance of each (token, address), read in JSON-RPC batches of 500 `eth_call`s
        (one round trip per batch instead of one each; the call data is encoded here)."""
        contracts = {token: to_checksum_address(self.contracts[token]) for token, _ in pairs}
        balances: list[int] = []
        for first in range(0, len(pairs), 500):
            balances += await self.client.call_uints(
                [
                    (contracts[token], _balance_of_call(address))
                    for token, address in pairs[first : first + 500]
                ]
            )
        return balances

    def shown_balances_version(self) -> int | None:
        """Moves whenever the balance book forgets a balance; None while shown balances are
        read from the chain each time (no book, or its watcher is behind)."""
        if self.book is None or not self.book.watching:
            return None
        return self.book.epoch

    async def shown_balances(self, address: str, tokens: Sequence[str]) -> dict[str, int]:
        """`tokens`' balances of `address` for display: from the balance book while the chain
        shows no move of them, else read in one batch. Never for deciding a spend."""
        if self.book is None:
            return dict(
                zip(tokens, await self.balances_of([(t, address) for t in tokens]), strict=True)
            )
        return await self.book.balances(address, tokens)

    async def total_supply(self, token: str) -> int:
        supply: int = await self.client.token(self.contracts[token]).functions.totalSupply().call()
        return supply


async def operation_for_key(session: AsyncSession, idempotency_key: str) -> ChainOperation | None:
    return await repository.operation_by_key(session, idempotency_key)


async def statuses_of(session: AsyncSession, idempotency_keys: Sequence[str]) -> dict[str, str]:
    """The status of each requested operation, by its idempotency key (absent: not requested)."""
    return await repository.statuses_by_key(session, idempotency_keys)


def group_status(by_key: dict[str, str], keys: Sequence[str]) -> str:
    """The status of a group of operations (by idempotency key, from `statuses_of`): failed
    if one failed, confirmed once all are, else pending."""
    statuses = {by_key.get(key) for key in keys}
    if "failed" in statuses:
        return "failed"
    return "confirmed" if statuses <= {"confirmed"} else "pending"


async def request(
    session: AsyncSession,
    handle: ChainHandle | None,
    *,
    token: str,
    kind: OperationKind,
    moves: Sequence[Move],
    idempotency_key: str,
    requested_by: uuid.UUID | None = None,
    call: Call | None = None,
) -> tuple[ChainOperation, bool]:
    """The one way other contexts move tokens: record the operation (once per idempotency
    key) in the caller's transaction, and wake the submitter once that transaction commits —
    never before, or it could look for the operation and not find it."""
    if handle is None:
        raise ChainUnavailable()
    operation, created = await enqueue(
        session,
        chain_id=handle.chain_id,
        signer=handle.signer,
        token=token,
        kind=kind,
        moves=moves,
        idempotency_key=idempotency_key,
        requested_by=requested_by,
        call=call,
    )
    if created:
        set_after_commit(session, handle.submitter.wake)
    return operation, created


async def request_call(
    session: AsyncSession,
    handle: ChainHandle | None,
    *,
    to: str | None,
    data: bytes,
    idempotency_key: str,
    token: str = "",
    effects: Sequence[Move] = (),
    requested_by: uuid.UUID | None = None,
) -> tuple[ChainOperation, bool]:
    """Any other transaction of the operator key (`to` None: a contract creation), through
    the same outbox as the token moves, so it shares their nonce sequence and is sent exactly
    once per idempotency key. `effects` are the `token` moves the call causes (a Safe paying
    out), recorded so that histories and reconciliation see them. Returns (operation, created)."""
    return await request(
        session,
        handle,
        token=token,
        kind=OperationKind.CALL,
        moves=effects,
        idempotency_key=idempotency_key,
        requested_by=requested_by,
        call=(to, data),
    )


def _entries(operation: ChainOperation, address: str) -> list[AddressEntry]:
    entries = []
    for item in operation.items:
        if address not in (item["from"], item["to"]):
            continue
        outgoing = item["from"] == address
        entries.append(
            AddressEntry(
                operation_id=operation.id,
                # A call's token effect is a transfer (a Safe paying out).
                kind=str(
                    OperationKind.TRANSFER
                    if operation.kind == OperationKind.CALL
                    else operation.kind
                ),
                token=operation.token,
                direction="out" if outgoing else "in",
                amount=from_base_units(int(item["amount"])),
                counterparty=item["to"] if outgoing else item["from"],
                status=str(operation.status),
                tx_hash=operation.tx_hash,
                created_at=operation.created_at,
                idempotency_key=operation.idempotency_key,
            )
        )
    return entries


async def entries_of(
    session: AsyncSession, address: str, *, limit: int = 100
) -> list[AddressEntry]:
    """What moved in or out of `address`, newest operation first."""
    operations = await repository.operations_of_address(session, address, limit=limit)
    return [entry for operation in operations for entry in _entries(operation, address)]


def _purpose(idempotency_key: str) -> str:
    return idempotency_key.split(":", 1)[0]


async def reconcile_tokens(session: AsyncSession, handle: ChainHandle) -> TokenReconciliation:
    """Every token's supply on chain against the record of every move (mints less burns,
    confirmed, with moves in flight as the tolerance), and every address's balance on chain
    against its recorded moves. Anything minted or burned past the platform shows here."""
    confirmed: dict[str, int] = defaultdict(int)
    minting: dict[str, int] = defaultdict(int)
    burning: dict[str, int] = defaultdict(int)
    by_purpose: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    balances: dict[tuple[str, str], int] = defaultdict(int)
    in_flight: set[tuple[str, str]] = set()
    for operation in await repository.operations_on_chain(session, handle.chain_id):
        token, done = operation.token, operation.status == OperationStatus.CONFIRMED
        for item in operation.items:
            amount = int(item["amount"])
            net = {OperationKind.MINT: amount, OperationKind.BURN: -amount}.get(operation.kind, 0)
            if not done:
                minting[token] += max(net, 0)
                burning[token] += max(-net, 0)
                in_flight.update((token, a) for a in (item["from"], item["to"]) if a)
                continue
            confirmed[token] += net
            by_purpose[token][_purpose(operation.idempotency_key)] += net
            if item["from"]:
                balances[(token, item["from"])] -= amount
            if item["to"]:
                balances[(token, item["to"])] += amount
    supplies = []
    for token in TOKENS:
        supply = await handle.total_supply(token)
        low, high = confirmed[token] - burning[token], confirmed[token] + minting[token]
        supplies.append(
            SupplyCheck(
                token=token,
                total_supply=from_base_units(supply),
                recorded=from_base_units(confirmed[token]),
                mints_in_flight=from_base_units(minting[token]),
                burns_in_flight=from_base_units(burning[token]),
                by_purpose={p: from_base_units(v) for p, v in sorted(by_purpose[token].items())},
                ok=low <= supply <= high,
            )
        )
    mismatched = []
    for (token, address), recorded in sorted(balances.items()):
        if (token, address) in in_flight:
            continue  # its balance is moving: checked once the move is final
        on_chain = await handle.balance_of(token, address)
        if on_chain != recorded:
            mismatched.append(
                BalanceMismatch(
                    address=address,
                    token=token,
                    on_chain=from_base_units(on_chain),
                    recorded=from_base_units(recorded),
                )
            )
    return TokenReconciliation(
        supplies=supplies,
        mismatched_balances=mismatched,
        ok=all(s.ok for s in supplies) and not mismatched,
    )


def _net(operation: ChainOperation) -> int:
    units = sum(int(i["amount"]) for i in operation.items)
    return units if operation.kind == OperationKind.MINT else -units


async def net_minted_by_hour(
    session: AsyncSession, chain_id: int, token: str, start: datetime, end: datetime
) -> dict[datetime, int]:
    """Base units of `token` minted less burned per UTC hour (of the moves' confirmation)
    in [start, end) (analytics)."""
    net: dict[datetime, int] = defaultdict(int)
    for operation in await repository.finished_between(session, chain_id, token, start, end):
        assert operation.finished_at is not None
        net[operation.finished_at.replace(minute=0, second=0, microsecond=0)] += _net(operation)
    return net


async def net_minted_before(
    session: AsyncSession, chain_id: int, token: str, before: datetime
) -> int:
    """Base units of `token` minted less burned, confirmed before `before`."""
    moves = await repository.finished_between(session, chain_id, token, None, before)
    return sum(_net(operation) for operation in moves)
