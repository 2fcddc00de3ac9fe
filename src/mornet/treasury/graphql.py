"""GraphQL queries and mutations of the treasury: the REST shapes, served as GraphQL types."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import cast

import strawberry
from pydantic import TypeAdapter, ValidationError
from strawberry.scalars import JSON

from mornet.chain.dependencies import chain_of
from mornet.errors import ValidationFailed, describe
from mornet.graphql import Info, validated
from mornet.pagination import PageRequest
from mornet.treasury import service
from mornet.treasury.endpoints import one_proposal_out, proposals_out, treasury_out
from mornet.treasury.models import ProposalStatus
from mornet.treasury.schemas import (
    OwnerOut,
    ProposalOut,
    ProposalRequest,
    TreasuryOut,
    VoteOut,
    VoteRequest,
)

_PROPOSAL = TypeAdapter[service.ProposalBody](ProposalRequest)

ProposalStatusType = strawberry.enum(ProposalStatus, name="ProposalStatus")


@strawberry.experimental.pydantic.type(model=OwnerOut, all_fields=True, name="TreasuryOwner")
class OwnerType:
    """An owner of the Safe: an operator account, or an external address."""


@strawberry.experimental.pydantic.type(model=TreasuryOut, name="Treasury")
class TreasuryType:
    """The DAO treasury's Safe (balances are a JSON object token → amount)."""

    status: strawberry.auto
    chain_id: strawberry.auto
    address: strawberry.auto
    owners: list[OwnerType]
    threshold: strawberry.auto
    nonce: strawberry.auto
    balances: JSON
    parameters_contract: strawberry.auto
    error: strawberry.auto
    created_at: strawberry.auto
    activated_at: strawberry.auto


@strawberry.experimental.pydantic.type(model=VoteOut, all_fields=True, name="TreasuryVote")
class VoteType:
    """One owner's vote."""


@strawberry.experimental.pydantic.type(model=ProposalOut, name="TreasuryProposal")
class ProposalType:
    """A Safe transaction proposed to the owners, with its votes."""

    id: strawberry.auto
    kind: strawberry.auto
    details: JSON
    description: strawberry.auto
    to: strawberry.auto
    value: strawberry.auto
    data: strawberry.auto
    operation: strawberry.auto
    nonce: strawberry.auto
    safe_tx_hash: strawberry.auto
    status: ProposalStatusType  # type: ignore[valid-type]
    confirmations: list[VoteType]
    rejections: list[VoteType]
    confirmations_required: strawberry.auto
    proposed_by: strawberry.auto
    tx_hash: strawberry.auto
    error: strawberry.auto
    created_at: strawberry.auto
    decided_at: strawberry.auto


def _treasury(out: TreasuryOut) -> TreasuryType:
    treasury = TreasuryType.from_pydantic(out)
    treasury.balances = cast(JSON, {k: str(v) for k, v in out.balances.items()})  # exact text
    return treasury


def _proposal(out: ProposalOut) -> ProposalType:
    return ProposalType.from_pydantic(out)


@strawberry.type
class TreasuryQuery:
    @strawberry.field(description="The DAO treasury, read from the chain.")
    async def treasury(self, info: Info) -> TreasuryType:
        await info.context.user()
        session, handle = info.context.session, chain_of(info.context.platform)
        return _treasury(await treasury_out(session, handle))

    @strawberry.field(description="Proposals, newest first (users see the executed ones).")
    async def proposals(
        self,
        info: Info,
        status: ProposalStatusType | None = None,  # type: ignore[valid-type]
        offset: int = 0,
        limit: int = 50,
    ) -> list[ProposalType]:
        user = await info.context.user()
        session, handle = info.context.session, chain_of(info.context.platform)
        found, _ = await service.proposals(
            session,
            handle,
            actor=user,
            status=ProposalStatus(status.value) if status is not None else None,
            page=PageRequest(offset=max(offset, 0), limit=min(max(limit, 1), 200)),
        )
        t = await service.treasury_of(session, handle)
        return [_proposal(p) for p in await proposals_out(session, t, found)]


@strawberry.type
class TreasuryMutation:
    @strawberry.mutation(
        description="Propose a Safe transaction: kind transfer (token, to, amount), parameter "
        "(name, value), minter (action grant|revoke, address) or owners (action "
        "add|remove|threshold, owner, threshold)."
    )
    async def propose(
        self,
        info: Info,
        kind: str,
        description: str = "",
        nonce: int | None = None,
        token: str | None = None,
        to: str | None = None,
        amount: Decimal | None = None,
        name: str | None = None,
        value: Decimal | None = None,
        action: str | None = None,
        address: str | None = None,
        owner: str | None = None,
        threshold: int | None = None,
    ) -> ProposalType:
        admin = await info.context.admin()
        given = {
            "kind": kind,
            "description": description,
            "nonce": nonce,
            "token": token,
            "to": to,
            "amount": amount,
            "name": name,
            "value": value,
            "action": action,
            "address": address,
            "owner": owner,
            "threshold": threshold,
        }
        try:
            body = _PROPOSAL.validate_python({k: v for k, v in given.items() if v is not None})
        except ValidationError as exc:
            raise ValidationFailed(describe(exc)) from exc
        session, handle = info.context.session, chain_of(info.context.platform)
        proposal = await service.propose(session, handle, actor=admin, request=body)
        return _proposal(await one_proposal_out(session, handle, proposal))

    @strawberry.mutation(
        description="Confirm a proposal as an owner (signed with your operator key), or submit "
        "an external owner's signature of its safeTxHash."
    )
    async def confirm(
        self, info: Info, proposal_id: uuid.UUID, signature: str | None = None
    ) -> ProposalType:
        return await _vote(info, proposal_id, signature, approve=True)

    @strawberry.mutation(description="Vote against a proposal as an owner.")
    async def reject(
        self, info: Info, proposal_id: uuid.UUID, signature: str | None = None
    ) -> ProposalType:
        return await _vote(info, proposal_id, signature, approve=False)


async def _vote(
    info: Info, proposal_id: uuid.UUID, signature: str | None, *, approve: bool
) -> ProposalType:
    admin = await info.context.admin()
    body = validated(VoteRequest, signature=signature)
    session, handle = info.context.session, chain_of(info.context.platform)
    proposal = await service.vote(
        session,
        handle,
        info.context.platform.cipher,
        proposal_id=proposal_id,
        actor=admin,
        approve=approve,
        signature=body.signature,
    )
    return _proposal(await one_proposal_out(session, handle, proposal))
