"""Treasury rules: the DAO's Safe (created through the outbox, then handed the token and
parameter contracts), proposals and owners' votes, execution once the threshold agrees, and
the governed parameters it decides."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import structlog
from eth_utils.address import is_address, to_checksum_address
from hexbytes import HexBytes
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from web3.contract import AsyncContract

from mornet import outbox
from mornet.access import Actor
from mornet.chain import service as chain
from mornet.chain.contracts import TOKENS
from mornet.chain.errors import ChainUnavailable
from mornet.chain.schemas import OperationKind
from mornet.changes import cached_read, topics_of
from mornet.crypto import WalletCipher
from mornet.db import utcnow
from mornet.errors import Conflict, Forbidden, MornetError, NotFound, ValidationFailed
from mornet.identity import service as identity
from mornet.pagination import PageRequest, fetch_page
from mornet.treasury import repository
from mornet.treasury import safe as safes
from mornet.treasury.events import ParameterSet, ProposalChanged, TreasuryCreated
from mornet.treasury.models import (
    PlatformParameter,
    Proposal,
    ProposalStatus,
    ProposalVote,
    Treasury,
)
from mornet.treasury.models import TreasuryStatus as TreasuryStatus  # part of this API
from mornet.treasury.schemas import (
    MinterProposal,
    OwnersProposal,
    ParameterProposal,
    TransferProposal,
)
from mornet.wallets import service as wallets

log = structlog.get_logger(__name__)

ProposalBody = TransferProposal | ParameterProposal | MinterProposal | OwnersProposal
"""A validated proposal request (`schemas.ProposalRequest`)."""

FALLBACK_ADDRESS = chain.keyless_address("mornet:treasury")
"""Where revenue goes until a treasury exists (a hash with no key, readable by anyone); its
tokens move to the Safe when the Safe is created."""

STEP_DEPLOY, STEP_SAFE, STEP_HANDOVER = 1, 2, 3
KEY_PREFIX = "treasury:"
MAX_OWNERS = 10


class NoTreasury(NotFound):
    code = "no_treasury"

    def __init__(self) -> None:
        super().__init__("no treasury exists on this chain yet")


class TreasuryNotActive(Conflict):
    code = "treasury_not_active"


class GovernedByTreasury(Conflict):
    code = "governed_by_treasury"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"{name} is governed by the DAO treasury: only an executed proposal changes it"
        )


class NotAnOwner(Forbidden):
    code = "not_an_owner"


class ChainDisagrees(MornetError):
    status = 503
    code = "chain_disagrees"


# Governed parameters.


async def get_parameter(session: AsyncSession, name: str) -> PlatformParameter:
    parameter = await session.get(PlatformParameter, name)
    if parameter is None:
        raise NotFound(f"no parameter {name!r}", code="parameter_not_found")
    return parameter


async def parameter_value(session: AsyncSession, name: str) -> Decimal:
    """The value the platform uses now (the chain's, once a treasury governs it)."""
    return Decimal((await get_parameter(session, name)).value)


async def list_parameters(session: AsyncSession) -> Sequence[PlatformParameter]:
    return await repository.parameters(session)


BOUNDS: dict[str, tuple[Decimal, Decimal]] = {
    "gcm_rate": (Decimal(0), Decimal(1_000_000)),
    "market_spread": (Decimal(0), Decimal(1)),
}
"""Each parameter's open interval: a spread of 1 or more would pay nothing (or less) back,
and a rate of 0 would divide by zero."""


def check_bounds(name: str, value: Decimal) -> None:
    low, high = BOUNDS.get(name, (Decimal(0), Decimal(10) ** 12))
    if not low < value < high:
        raise ValidationFailed(
            f"{name} must be above {low} and below {high}", code="parameter_out_of_bounds"
        )


async def is_governed(session: AsyncSession) -> bool:
    """Whether a treasury decides the parameters (from the start of its creation: their
    values are then written to its contract)."""
    return await repository.any_treasury(session)


async def set_parameter(
    session: AsyncSession, name: str, value: Decimal, *, actor_id: uuid.UUID | None
) -> PlatformParameter:
    """An admin's change, allowed only while no treasury exists."""
    parameter = await get_parameter(session, name)
    if await is_governed(session):
        raise GovernedByTreasury(name)
    check_bounds(name, value)
    parameter.value = str(value)
    parameter.updated_at = utcnow()
    parameter.updated_by = actor_id
    await session.flush()
    await outbox.record(session, ParameterSet(name=name, value=value, by=actor_id))
    return parameter


def _scaled(value: Decimal) -> int:
    """A parameter as the contract keeps it: value times 10^18, exact."""
    units = value.scaleb(18)
    if units != units.to_integral_value() or units <= 0:
        raise ValidationFailed("a parameter is positive with at most 18 decimal places")
    return int(units)


def _unscaled(units: int) -> Decimal:
    return (Decimal(units).scaleb(-18)).normalize()


# Reading the Safe.

_contracts: dict[tuple[int, str, str], AsyncContract] = {}


def _contract(handle: chain.ChainHandle, name: str, address: str) -> AsyncContract:
    key = (id(handle.client), name, address)
    if key not in _contracts:
        _contracts[key] = handle.client.w3.eth.contract(
            address=to_checksum_address(address), abi=safes.interface(name).abi
        )
    return _contracts[key]


@dataclass(frozen=True)
class SafeState:
    owners: list[str]
    threshold: int
    nonce: int


async def safe_state(handle: chain.ChainHandle, treasury: Treasury) -> SafeState:
    assert treasury.safe is not None
    contract = _contract(handle, safes.SINGLETON, treasury.safe)
    owners = await contract.functions.getOwners().call()
    threshold = await contract.functions.getThreshold().call()
    nonce = await contract.functions.nonce().call()
    return SafeState(
        owners=[to_checksum_address(o) for o in owners], threshold=int(threshold), nonce=int(nonce)
    )


def _require(handle: chain.ChainHandle | None) -> chain.ChainHandle:
    if handle is None:
        raise ChainUnavailable()
    return handle


async def treasury_of(session: AsyncSession, handle: chain.ChainHandle | None) -> Treasury:
    live = _require(handle)
    treasury = await repository.treasury_of_chain(session, live.chain_id)
    if treasury is None:
        raise NoTreasury()
    return treasury


async def safe_address(session: AsyncSession, handle: chain.ChainHandle | None) -> str:
    """The active treasury's Safe (404 without a treasury, 409 while it is being created)."""
    t = await _active(session, handle)
    assert t.safe is not None
    return t.safe


TREASURY_TOPICS = topics_of(Treasury)


async def revenue_address(
    session: AsyncSession, handle: chain.ChainHandle | None, configured: str | None
) -> str:
    """Where settlement and the market pay the platform's revenue: the active Safe, else a
    configured address, else the keyless fallback. Kept in the process's cache while no
    treasury row moves (it is read on every operators' summary and every settlement)."""
    fallback = configured or FALLBACK_ADDRESS
    if handle is None:
        return fallback
    chain_id = handle.chain_id

    async def read() -> str:
        treasury = await repository.treasury_of_chain(session, chain_id)
        if treasury is not None and treasury.status == TreasuryStatus.ACTIVE and treasury.safe:
            return treasury.safe
        return fallback

    return await cached_read(
        session, "treasury.revenue", TREASURY_TOPICS, (chain_id, configured), read
    )


# Creating the Safe.


async def _owner_address(session: AsyncSession, owner: str) -> tuple[str, uuid.UUID | None]:
    """An owner from an address (external: signs off-platform) or an operator's email or
    user id (signs inside the platform with the operator's custodial key)."""
    owner = owner.strip()
    if is_address(owner):
        external = to_checksum_address(owner)
        return external, await wallets.user_of_address(session, external)
    address = await wallets.resolve_address(session, owner)
    user_id = await wallets.user_of_address(session, address)
    assert user_id is not None
    if not (await identity.get_user(session, user_id)).is_admin:
        raise ValidationFailed(
            f"{owner} is not an operator: an owner is an operator account or an address",
            code="owner_not_operator",
        )
    return address, user_id


async def create(
    session: AsyncSession,
    handle: chain.ChainHandle | None,
    *,
    owners: Sequence[str],
    threshold: int,
    actor_id: uuid.UUID | None,
) -> Treasury:
    """Start creating the chain's treasury (once): deploy what the chain lacks. `advance`
    takes it through the next steps as their transactions confirm."""
    live = _require(handle)
    if await repository.treasury_of_chain(session, live.chain_id) is not None:
        raise Conflict("this chain already has a treasury", code="treasury_exists")
    resolved: dict[str, uuid.UUID | None] = {}
    for owner in owners:
        address, user_id = await _owner_address(session, owner)
        resolved[address] = user_id
    if not 1 <= len(resolved) <= MAX_OWNERS:
        raise ValidationFailed(f"a treasury has 1 to {MAX_OWNERS} distinct owners")
    if not 1 <= threshold <= len(resolved):
        raise ValidationFailed(
            f"the threshold is 1 to the number of owners ({len(resolved)})", code="threshold"
        )
    treasury = Treasury(
        chain_id=live.chain_id,
        status=TreasuryStatus.CREATING,
        step=STEP_DEPLOY,
        owners=list(resolved),
        operators={a: str(u) for a, u in resolved.items() if u is not None},
        threshold=threshold,
        salt_nonce=str(secrets.randbits(64)),
        created_by=actor_id,
        created_at=utcnow(),
    )
    try:
        async with session.begin_nested():
            session.add(treasury)
            await session.flush()
    except IntegrityError:
        raise Conflict("this chain already has a treasury", code="treasury_exists") from None
    await outbox.record(
        session,
        TreasuryCreated(
            treasury_id=treasury.id, owners=treasury.owners, threshold=threshold, by=actor_id
        ),
    )
    keys = []
    for name in safes.INFRASTRUCTURE:
        key = f"{KEY_PREFIX}{treasury.id}:deploy:{name}"
        await chain.request_call(
            session, live, to=None, data=safes.creation_code(name), idempotency_key=key
        )
        keys.append(key)
    treasury.step_keys = keys
    await session.flush()
    return treasury


async def _created(session: AsyncSession, key: str) -> str:
    operation = await chain.operation_for_key(session, key)
    assert operation is not None
    assert operation.created_address is not None
    return to_checksum_address(operation.created_address)


async def _call(
    session: AsyncSession, handle: chain.ChainHandle, to: str, data: bytes, key: str
) -> str:
    await chain.request_call(session, handle, to=to, data=data, idempotency_key=key)
    return key


async def _deploy_safe(session: AsyncSession, handle: chain.ChainHandle, t: Treasury) -> list[str]:
    """Step 2: the Safe proxy with its owners, the parameters' values written on chain, the
    token contracts told to protect the Safe, and what revenue the fallback address holds
    moved to the Safe."""
    base = f"{KEY_PREFIX}{t.id}"
    t.singleton = await _created(session, f"{base}:deploy:{safes.SINGLETON}")
    t.proxy_factory = await _created(session, f"{base}:deploy:{safes.PROXY_FACTORY}")
    t.fallback_handler = await _created(session, f"{base}:deploy:{safes.FALLBACK_HANDLER}")
    t.multi_send = await _created(session, f"{base}:deploy:{safes.MULTI_SEND}")
    t.parameters = await _created(session, f"{base}:deploy:{safes.PARAMETERS}")
    initializer = safes.setup_call(t.owners, t.threshold, t.fallback_handler)
    salt = int(t.salt_nonce)
    factory = _contract(handle, safes.PROXY_FACTORY, t.proxy_factory)
    # The proxy's address is fixed by CREATE2 (factory, initializer, salt): ask before sending.
    t.safe = to_checksum_address(
        await factory.functions.createProxyWithNonce(t.singleton, initializer, salt).call(
            {"from": handle.signer}
        )
    )
    keys = [
        await _call(
            session,
            handle,
            t.proxy_factory,
            safes.calldata(
                safes.PROXY_FACTORY, "createProxyWithNonce", t.singleton, initializer, salt
            ),
            f"{base}:proxy",
        )
    ]
    for parameter in await repository.parameters(session):
        keys.append(
            await _call(
                session,
                handle,
                t.parameters,
                safes.calldata(
                    safes.PARAMETERS,
                    "set_value",
                    safes.parameter_key(parameter.name),
                    _scaled(Decimal(parameter.value)),
                ),
                f"{base}:parameter:{parameter.name}",
            )
        )
    for token in TOKENS:
        keys.append(
            await _call(
                session,
                handle,
                handle.contracts[token],
                safes.token_call("set_protected", t.safe, True),
                f"{base}:protect:{token}",
            )
        )
        held = await handle.balance_of(token, FALLBACK_ADDRESS) - await chain.pending_debits(
            session, FALLBACK_ADDRESS, token
        )
        if held > 0:
            key = f"{base}:sweep:{token}"
            await chain.request(
                session,
                handle,
                token=token,
                kind=OperationKind.TRANSFER,
                moves=[chain.Move(amount=held, sender=FALLBACK_ADDRESS, receiver=t.safe)],
                idempotency_key=key,
            )
            keys.append(key)
    return keys


async def _hand_over(session: AsyncSession, handle: chain.ChainHandle, t: Treasury) -> list[str]:
    """Step 3: the Safe becomes the owner of the five token contracts and of the parameters
    (the operator stays a minter for routine work)."""
    assert t.safe is not None
    assert t.parameters is not None
    base = f"{KEY_PREFIX}{t.id}"
    keys = [
        await _call(
            session,
            handle,
            handle.contracts[token],
            safes.token_call("transfer_ownership", t.safe),
            f"{base}:own:{token}",
        )
        for token in TOKENS
    ]
    keys.append(
        await _call(
            session,
            handle,
            t.parameters,
            safes.calldata(safes.PARAMETERS, "transfer_ownership", t.safe),
            f"{base}:own:parameters",
        )
    )
    return keys


async def _advance_creation(session: AsyncSession, handle: chain.ChainHandle, t: Treasury) -> None:
    statuses = await chain.statuses_of(session, t.step_keys)
    state = chain.group_status(statuses, t.step_keys)
    if state == "failed":
        failed = [k for k in t.step_keys if statuses.get(k) == "failed"]
        operation = await chain.operation_for_key(session, failed[0])
        t.status = TreasuryStatus.FAILED
        t.error = f"{failed[0]}: {operation.error if operation else 'failed'}"[:1000]
        log.error("treasury.creation_failed", error=t.error)
        return
    if state != "confirmed":
        return
    if t.step == STEP_DEPLOY:
        t.step_keys = await _deploy_safe(session, handle, t)
        t.step = STEP_SAFE
    elif t.step == STEP_SAFE:
        t.step_keys = await _hand_over(session, handle, t)
        t.step = STEP_HANDOVER
    else:
        t.status = TreasuryStatus.ACTIVE
        t.activated_at = utcnow()
        log.info("treasury.active", safe=t.safe, owners=t.owners, threshold=t.threshold)
    await session.flush()


async def advance(session: AsyncSession, handle: chain.ChainHandle | None) -> Treasury | None:
    """Move the treasury on: the next creation step once the last one confirmed, then
    proposals whose execution became final, proposals the Safe's nonce passed, and the next
    proposal ready to execute. Idempotent; run after chain operations finish and now and then."""
    if handle is None:
        return None
    t = await repository.treasury_of_chain(session, handle.chain_id, lock=True)
    if t is None:
        return None
    if t.status == TreasuryStatus.CREATING:
        await _advance_creation(session, handle, t)
    if t.status != TreasuryStatus.ACTIVE:
        return t
    await _settle_executions(session, handle, t)
    return t


# Proposals.


@dataclass(frozen=True)
class Draft:
    """What a proposal asks the Safe to do, before it has a nonce."""

    kind: str
    details: dict[str, Any]
    to: str
    data: bytes
    operation: safes.SafeOperation = safes.SafeOperation.CALL
    effects: tuple[chain.Move, ...] = ()
    token: str = ""


async def draft_transfer(
    session: AsyncSession,
    handle: chain.ChainHandle,
    t: Treasury,
    *,
    token: str,
    to: str,
    amount: Decimal,
) -> Draft:
    assert t.safe is not None
    receiver = await wallets.resolve_address(session, to)
    units = chain.to_base_units(amount)
    return Draft(
        kind="transfer",
        details={"token": token, "to": receiver, "amount": str(amount)},
        to=handle.contracts[token],
        data=safes.token_call("transfer", receiver, units),
        effects=(chain.Move(amount=units, sender=t.safe, receiver=receiver),),
        token=token,
    )


async def draft_parameter(
    session: AsyncSession, t: Treasury, *, name: str, value: Decimal
) -> Draft:
    assert t.parameters is not None
    await get_parameter(session, name)
    check_bounds(name, value)
    return Draft(
        kind="parameter",
        details={"name": name, "value": str(value)},
        to=t.parameters,
        data=safes.calldata(
            safes.PARAMETERS, "set_value", safes.parameter_key(name), _scaled(value)
        ),
    )


def draft_minter(handle: chain.ChainHandle, t: Treasury, *, action: str, address: str) -> Draft:
    """Grant or revoke a minter on all five tokens at once (a MultiSend)."""
    assert t.multi_send is not None
    if not is_address(address):
        raise ValidationFailed(f"{address!r} is not an address", code="not_an_address")
    minter = to_checksum_address(address)
    if minter == t.safe:
        raise ValidationFailed("the Safe is the owner: it is always a minter")
    grant = action == "grant"
    calls = [
        (handle.contracts[token], safes.token_call("set_minter", minter, grant)) for token in TOKENS
    ]
    return Draft(
        kind="minter",
        details={"action": action, "address": minter},
        to=t.multi_send,
        data=safes.multi_send(calls),
        operation=safes.SafeOperation.DELEGATE_CALL,
    )


async def draft_owners(
    session: AsyncSession,
    state: SafeState,
    t: Treasury,
    *,
    action: str,
    owner: str | None,
    threshold: int | None,
) -> Draft:
    assert t.safe is not None
    owners = state.owners
    if action == "threshold":
        if threshold is None or not 1 <= threshold <= len(owners):
            raise ValidationFailed(
                f"the threshold is 1 to the number of owners ({len(owners)})", code="threshold"
            )
        return Draft(
            kind="owners",
            details={"action": action, "threshold": threshold},
            to=t.safe,
            data=safes.calldata(safes.SINGLETON, "changeThreshold", threshold),
        )
    if owner is None:
        raise ValidationFailed(f"{action} names an owner", code="owner_missing")
    address, user_id = await _owner_address(session, owner)
    if action == "add":
        if address in owners:
            raise Conflict(f"{address} is already an owner", code="already_an_owner")
        if len(owners) >= MAX_OWNERS:
            raise ValidationFailed(f"a treasury has at most {MAX_OWNERS} owners")
        new_threshold = threshold or state.threshold
        if not 1 <= new_threshold <= len(owners) + 1:
            raise ValidationFailed("the threshold is 1 to the number of owners", code="threshold")
        data = safes.calldata(safes.SINGLETON, "addOwnerWithThreshold", address, new_threshold)
    else:
        if address not in owners:
            raise ValidationFailed(f"{address} is not an owner", code="not_an_owner")
        if len(owners) == 1:
            raise ValidationFailed("the last owner cannot be removed")
        new_threshold = threshold or min(state.threshold, len(owners) - 1)
        if not 1 <= new_threshold <= len(owners) - 1:
            raise ValidationFailed("the threshold is 1 to the number of owners", code="threshold")
        index = owners.index(address)
        previous = owners[index - 1] if index else safes.SENTINEL_OWNERS
        data = safes.calldata(safes.SINGLETON, "removeOwner", previous, address, new_threshold)
    details: dict[str, Any] = {"action": action, "owner": address, "threshold": new_threshold}
    if user_id is not None:
        details["user_id"] = str(user_id)
    return Draft(kind="owners", details=details, to=t.safe, data=data)


async def _active(session: AsyncSession, handle: chain.ChainHandle | None) -> Treasury:
    t = await treasury_of(session, handle)
    if t.status != TreasuryStatus.ACTIVE:
        raise TreasuryNotActive(f"the treasury is {t.status}, not active yet")
    return t


async def propose(
    session: AsyncSession,
    handle: chain.ChainHandle | None,
    *,
    actor: Actor,
    request: ProposalBody,
) -> Proposal:
    """Record a proposal: its Safe transaction, its nonce (the Safe's next unless a later one
    is asked for) and its SafeTx hash, checked against the Safe's own `getTransactionHash`."""
    live = _require(handle)
    t = await _active(session, live)
    state = await safe_state(live, t)
    if isinstance(request, TransferProposal):
        draft = await draft_transfer(
            session, live, t, token=request.token, to=request.to, amount=request.amount
        )
    elif isinstance(request, ParameterProposal):
        draft = await draft_parameter(session, t, name=request.name, value=request.value)
    elif isinstance(request, MinterProposal):
        draft = draft_minter(live, t, action=request.action, address=request.address)
    else:
        draft = await draft_owners(
            session,
            state,
            t,
            action=request.action,
            owner=request.owner,
            threshold=request.threshold,
        )
    nonce = request.nonce
    if nonce is None:
        nonce = state.nonce
    elif nonce < state.nonce:
        raise ValidationFailed(f"the Safe's nonce is already {state.nonce}", code="nonce_passed")
    assert t.safe is not None
    transaction = safes.SafeTransaction(
        safe=t.safe, to=draft.to, value=0, data=draft.data, operation=draft.operation, nonce=nonce
    )
    safe_tx_hash = transaction.hash(live.chain_id)
    on_chain = await (
        _contract(live, safes.SINGLETON, t.safe)
        .functions.getTransactionHash(
            to_checksum_address(draft.to),
            0,
            draft.data,
            int(draft.operation),
            0,
            0,
            0,
            safes.NULL_ADDRESS,
            safes.NULL_ADDRESS,
            nonce,
        )
        .call()
    )
    if bytes(on_chain) != safe_tx_hash:
        raise ChainDisagrees("the Safe hashes this transaction differently: it is not proposed")
    hash_hex = "0x" + safe_tx_hash.hex()
    if await repository.proposal_by_hash(session, hash_hex) is not None:
        raise Conflict(
            "the same transaction is already proposed at this nonce", code="duplicate_proposal"
        )
    proposal = Proposal(
        treasury_id=t.id,
        kind=draft.kind,
        details=draft.details,
        description=request.description,
        to=to_checksum_address(draft.to),
        value="0",
        data="0x" + draft.data.hex(),
        operation=int(draft.operation),
        nonce=nonce,
        safe_tx_hash=hash_hex,
        status=ProposalStatus.OPEN,
        proposed_by=actor.id,
        created_at=utcnow(),
    )
    session.add(proposal)
    await session.flush()
    await _announce(session, proposal, "proposed", by=actor.id, detail=request.description)
    return proposal


async def _announce(
    session: AsyncSession, proposal: Proposal, what: str, *, by: uuid.UUID | None, detail: str = ""
) -> None:
    await outbox.record(
        session,
        ProposalChanged(
            proposal_id=proposal.id,
            kind=proposal.kind,
            nonce=proposal.nonce,
            what=what,
            by=by,
            detail=detail[:300],
        ),
    )


async def _locked_open(
    session: AsyncSession, handle: chain.ChainHandle | None, proposal_id: uuid.UUID
) -> tuple[chain.ChainHandle, Treasury, Proposal]:
    """The treasury, then the proposal, write-locked: votes and executions of one treasury
    are decided one at a time."""
    live = _require(handle)
    t = await repository.treasury_of_chain(session, live.chain_id, lock=True)
    if t is None:
        raise NoTreasury()
    proposal = await repository.proposal(session, proposal_id, lock=True)
    if proposal is None or proposal.treasury_id != t.id:
        raise NotFound("no such proposal", code="proposal_not_found")
    if proposal.status != ProposalStatus.OPEN:
        raise Conflict(f"the proposal is {proposal.status}", code="proposal_closed")
    return live, t, proposal


def _transaction(t: Treasury, proposal: Proposal) -> safes.SafeTransaction:
    assert t.safe is not None
    return safes.SafeTransaction(
        safe=t.safe,
        to=proposal.to,
        value=int(proposal.value),
        data=bytes(HexBytes(proposal.data)),
        operation=safes.SafeOperation(proposal.operation),
        nonce=proposal.nonce,
    )


async def _vote(
    session: AsyncSession,
    proposal: Proposal,
    *,
    owner: str,
    approve: bool,
    signature: bytes | None,
    actor: Actor,
) -> None:
    if await repository.vote(session, proposal.id, owner) is not None:
        raise Conflict(f"{owner} has already voted on this proposal", code="already_voted")
    session.add(
        ProposalVote(
            proposal_id=proposal.id,
            owner=owner,
            approve=approve,
            signature="0x" + signature.hex() if signature is not None else None,
            submitted_by=actor.id,
            created_at=utcnow(),
        )
    )
    await session.flush()


async def _voter(
    session: AsyncSession,
    handle: chain.ChainHandle,
    t: Treasury,
    proposal: Proposal,
    actor: Actor,
    signature: str | None,
    cipher: WalletCipher,
) -> tuple[str, bytes, SafeState]:
    """Who votes, with which signature: the caller's own custodial key (an operator owner),
    or an external owner's signature of the SafeTx hash, verified here."""
    state = await safe_state(handle, t)
    digest = bytes(HexBytes(proposal.safe_tx_hash))
    if signature is None:
        address, signed = await wallets.sign_digest(session, actor.id, cipher, digest)
        if address not in state.owners:
            raise NotAnOwner("you are not an owner of the treasury")
        return address, signed, state
    try:
        raw = bytes(HexBytes(signature))
        owner = safes.signer_of(raw, digest)
    except (ValueError, safes.BadSignature) as exc:
        raise ValidationFailed(str(exc), code="bad_signature") from None
    if owner not in state.owners:
        raise NotAnOwner("the signature is not an owner's signature of this proposal")
    return owner, raw, state


async def vote(
    session: AsyncSession,
    handle: chain.ChainHandle | None,
    cipher: WalletCipher,
    *,
    proposal_id: uuid.UUID,
    actor: Actor,
    approve: bool,
    signature: str | None = None,
) -> Proposal:
    """An owner's vote. A confirmation that brings the proposal to the threshold (with the
    Safe at its nonce) sends its execution to the chain through the outbox; a rejection that
    leaves the threshold out of reach rejects it (its nonce stays free for another)."""
    live, t, proposal = await _locked_open(session, handle, proposal_id)
    owner, signed, state = await _voter(session, live, t, proposal, actor, signature, cipher)
    await _vote(
        session,
        proposal,
        owner=owner,
        approve=approve,
        signature=signed if approve else None,
        actor=actor,
    )
    await _announce(
        session,
        proposal,
        "confirmed" if approve else "voted against",
        by=actor.id,
        detail=f"for owner {owner}",
    )
    if approve:
        await _execute_ready(session, live, t, state)
        return proposal
    votes = (await repository.votes_of(session, [proposal.id]))[proposal.id]
    against = sum(1 for v in votes if not v.approve and v.owner in state.owners)
    if len(state.owners) - against < state.threshold:
        proposal.status = ProposalStatus.REJECTED
        proposal.decided_at = utcnow()
        await session.flush()
        await _announce(session, proposal, "rejected", by=None)
    return proposal


def _execution_key(proposal: Proposal) -> str:
    return f"{KEY_PREFIX}execute:{proposal.id}"


async def _execute_ready(
    session: AsyncSession, handle: chain.ChainHandle, t: Treasury, state: SafeState
) -> None:
    """Send the execution of the open proposal at the Safe's nonce that has enough
    confirmations — unless one at that nonce is already on its way (one per nonce)."""
    at_nonce = [
        p
        for p in await repository.proposals_in(
            session, t.id, (ProposalStatus.OPEN, ProposalStatus.EXECUTING)
        )
        if p.nonce == state.nonce
    ]
    if any(p.status == ProposalStatus.EXECUTING for p in at_nonce):
        return
    votes = await repository.votes_of(session, [p.id for p in at_nonce])
    for proposal in sorted(at_nonce, key=lambda p: p.created_at):
        signed = {
            v.owner: bytes(HexBytes(v.signature))
            for v in votes[proposal.id]
            if v.approve and v.signature and v.owner in state.owners
        }
        if len(signed) < state.threshold:
            continue
        transaction = _transaction(t, proposal)
        effects: tuple[chain.Move, ...] = ()
        token = ""
        if proposal.kind == "transfer":
            token = proposal.details["token"]
            assert t.safe is not None
            effects = (
                chain.Move(
                    amount=chain.to_base_units(Decimal(proposal.details["amount"])),
                    sender=t.safe,
                    receiver=proposal.details["to"],
                ),
            )
        key = _execution_key(proposal)
        await chain.request_call(
            session,
            handle,
            to=transaction.safe,
            data=transaction.exec_call(safes.joined_signatures(signed)),
            idempotency_key=key,
            token=token,
            effects=effects,
        )
        proposal.status = ProposalStatus.EXECUTING
        proposal.operation_key = key
        await session.flush()
        log.info("treasury.executing", proposal=str(proposal.id), nonce=proposal.nonce)
        return


async def _settle_executions(session: AsyncSession, handle: chain.ChainHandle, t: Treasury) -> None:
    """Executions that became final: executed (its siblings at the nonce replaced, earlier
    nonces stale, its effect applied) or failed; then the next one ready goes out."""
    executing = await repository.proposals_in(session, t.id, (ProposalStatus.EXECUTING,))
    if not executing and not await repository.proposals_in(session, t.id, (ProposalStatus.OPEN,)):
        return  # nothing waits on the chain: no need to read the Safe (this runs every 2 s)
    keys = [p.operation_key for p in executing if p.operation_key]
    statuses = await chain.statuses_of(session, keys)
    state = await safe_state(handle, t)
    for proposal in executing:
        assert proposal.operation_key is not None
        status = statuses.get(proposal.operation_key)
        if status == "confirmed":
            operation = await chain.operation_for_key(session, proposal.operation_key)
            proposal.status = ProposalStatus.EXECUTED
            proposal.tx_hash = operation.tx_hash if operation else None
            proposal.decided_at = utcnow()
            await _apply(session, handle, t, proposal, state)
            await _announce(session, proposal, "executed", by=None, detail=proposal.tx_hash or "")
            log.info("treasury.executed", proposal=str(proposal.id), tx=proposal.tx_hash)
        elif status == "failed":
            operation = await chain.operation_for_key(session, proposal.operation_key)
            proposal.status = (
                ProposalStatus.REPLACED if state.nonce > proposal.nonce else ProposalStatus.FAILED
            )
            proposal.error = operation.error if operation else "the execution failed"
            proposal.decided_at = utcnow()
            await _announce(
                session, proposal, str(proposal.status), by=None, detail=proposal.error or ""
            )
    for proposal in await repository.proposals_in(session, t.id, (ProposalStatus.OPEN,)):
        if proposal.nonce < state.nonce:
            executed = await _executed_at(session, t, proposal.nonce)
            proposal.status = ProposalStatus.REPLACED if executed else ProposalStatus.STALE
            proposal.decided_at = utcnow()
            await _announce(session, proposal, str(proposal.status), by=None)
    t.owners, t.threshold = state.owners, state.threshold
    await session.flush()
    await _execute_ready(session, handle, t, state)


async def _executed_at(session: AsyncSession, t: Treasury, nonce: int) -> bool:
    executed = await repository.proposals_in(session, t.id, (ProposalStatus.EXECUTED,))
    return any(p.nonce == nonce for p in executed)


async def _apply(
    session: AsyncSession,
    handle: chain.ChainHandle,
    t: Treasury,
    proposal: Proposal,
    state: SafeState,
) -> None:
    """What the platform takes from an executed proposal: a parameter's new value (read back
    from the chain), the new owners."""
    if proposal.kind == "parameter":
        await sync_parameters(session, handle, t)
    elif proposal.kind == "owners" and proposal.details.get("action") == "add":
        user_id = proposal.details.get("user_id")
        if user_id is not None:
            t.operators = {**t.operators, proposal.details["owner"]: user_id}


async def sync_parameters(
    session: AsyncSession, handle: chain.ChainHandle | None, t: Treasury | None = None
) -> int:
    """Copy every governed parameter's value from the chain. Returns how many changed."""
    if handle is None:
        return 0
    t = t or await repository.treasury_of_chain(session, handle.chain_id)
    if t is None or t.status != TreasuryStatus.ACTIVE or t.parameters is None:
        return 0
    contract = _contract(handle, safes.PARAMETERS, t.parameters)
    changed = 0
    for parameter in await repository.parameters(session):
        units = await contract.functions.values(safes.parameter_key(parameter.name)).call()
        value = _unscaled(int(units))
        if units and Decimal(parameter.value) != value:
            parameter.value = str(value)
            parameter.updated_at = utcnow()
            parameter.updated_by = None
            changed += 1
            await outbox.record(session, ParameterSet(name=parameter.name, value=value, by=None))
    await session.flush()
    return changed


# Reading.


async def proposals(
    session: AsyncSession,
    handle: chain.ChainHandle | None,
    *,
    actor: Actor,
    status: ProposalStatus | None,
    page: PageRequest,
) -> tuple[Sequence[Proposal], int]:
    """Proposals, newest first. Everyone sees the executed ones (a DAO is public); operators
    see them all."""
    t = await treasury_of(session, handle)
    statuses = None if status is None else [status]
    if not actor.is_admin:
        statuses = [ProposalStatus.EXECUTED] if status in (None, ProposalStatus.EXECUTED) else []
    return await fetch_page(session, repository.proposals_query(t.id, statuses), page)


async def get_proposal(
    session: AsyncSession, handle: chain.ChainHandle | None, *, actor: Actor, proposal_id: uuid.UUID
) -> Proposal:
    t = await treasury_of(session, handle)
    proposal = await repository.proposal(session, proposal_id)
    if (
        proposal is None
        or proposal.treasury_id != t.id
        or (not actor.is_admin and proposal.status != ProposalStatus.EXECUTED)
    ):
        raise NotFound("no such proposal", code="proposal_not_found")
    return proposal


async def votes_of(
    session: AsyncSession, proposal_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[ProposalVote]]:
    return await repository.votes_of(session, proposal_ids)


async def balances(handle: chain.ChainHandle, t: Treasury) -> dict[str, Decimal]:
    if t.safe is None:
        return {}
    read = await handle.balances_of([(token, t.safe) for token in TOKENS])
    return {token: chain.from_base_units(units) for token, units in zip(TOKENS, read, strict=True)}


def is_treasury_key(idempotency_key: str) -> bool:
    return idempotency_key.startswith(KEY_PREFIX)
