"""REST routes of the treasury: the Safe, proposals and votes (in the shape of Safe's
transaction service), and the governed parameters."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Literal

from fastapi import APIRouter, status
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.chain.dependencies import ChainDep
from mornet.chain.service import ChainHandle
from mornet.dependencies import CipherDep, SessionDep
from mornet.errors import answers
from mornet.identity import service as identity
from mornet.identity.auth import AdminUser, CurrentUser
from mornet.pagination import Page, PageParams, page_of
from mornet.treasury import service
from mornet.treasury.models import PlatformParameter, Proposal, ProposalStatus, Treasury
from mornet.treasury.schemas import (
    OwnerOut,
    ParameterOut,
    ParameterUpdate,
    ProposalOut,
    ProposalRequest,
    TreasuryCreate,
    TreasuryOut,
    VoteOut,
    VoteRequest,
)

router = APIRouter(prefix="/api", tags=["treasury"])


async def treasury_out(session: AsyncSession, handle: ChainHandle | None) -> TreasuryOut:
    t = await service.treasury_of(session, handle)
    assert handle is not None
    # Read from the Safe when it exists (a read: the stored row is not touched here).
    listed, threshold, nonce = t.owners, t.threshold, None
    if t.status == service.TreasuryStatus.ACTIVE:
        state = await service.safe_state(handle, t)
        listed, threshold, nonce = state.owners, state.threshold, state.nonce
    users = await identity.users_by_id(session, [uuid.UUID(u) for u in t.operators.values()])
    owners = []
    for address in listed:
        user_id = t.operators.get(address)
        user = users.get(uuid.UUID(user_id)) if user_id else None
        owners.append(
            OwnerOut(
                address=address,
                user_id=user.id if user else None,
                email=user.email if user else None,
            )
        )
    return TreasuryOut(
        status=t.status,
        chain_id=t.chain_id,
        address=t.safe if t.status == service.TreasuryStatus.ACTIVE else None,
        owners=owners,
        threshold=threshold,
        nonce=nonce,
        balances=await service.balances(handle, t) if nonce is not None else {},
        parameters_contract=t.parameters,
        error=t.error,
        created_at=t.created_at,
        activated_at=t.activated_at,
    )


async def proposals_out(
    session: AsyncSession, t: Treasury, proposals: Sequence[Proposal]
) -> list[ProposalOut]:
    votes = await service.votes_of(session, [p.id for p in proposals])
    out = []
    for p in proposals:
        mine = votes[p.id]
        out.append(
            ProposalOut(
                id=p.id,
                kind=p.kind,
                details=p.details,
                description=p.description,
                to=p.to,
                value=p.value,
                data=p.data,
                operation=p.operation,
                nonce=p.nonce,
                safe_tx_hash=p.safe_tx_hash,
                status=p.status,
                confirmations=[
                    VoteOut(owner=v.owner, created_at=v.created_at) for v in mine if v.approve
                ],
                rejections=[
                    VoteOut(owner=v.owner, created_at=v.created_at) for v in mine if not v.approve
                ],
                confirmations_required=t.threshold,
                proposed_by=p.proposed_by,
                tx_hash=p.tx_hash,
                error=p.error,
                created_at=p.created_at,
                decided_at=p.decided_at,
            )
        )
    return out


async def one_proposal_out(
    session: AsyncSession, handle: ChainHandle | None, proposal: Proposal
) -> ProposalOut:
    t = await service.treasury_of(session, handle)
    [out] = await proposals_out(session, t, [proposal])
    return out


@router.get("/treasury", responses=answers(404, 503))
async def read_treasury(_: CurrentUser, session: SessionDep, handle: ChainDep) -> TreasuryOut:
    """The DAO treasury: its Safe, owners, threshold, nonce and tokens, read from the chain
    (public to every user: a DAO is verifiable)."""
    return await treasury_out(session, handle)


@router.post("/admin/treasury", status_code=status.HTTP_202_ACCEPTED, responses=answers(409, 503))
async def create_treasury(
    body: TreasuryCreate, admin: AdminUser, session: SessionDep, handle: ChainDep
) -> TreasuryOut:
    """Create the chain's treasury, once: the Safe contracts the chain lacks, a Safe with
    these owners and threshold, and the token and parameter contracts handed to it. It is
    `creating` until its transactions confirm, then `active`."""
    await service.create(
        session, handle, owners=body.owners, threshold=body.threshold, actor_id=admin.id
    )
    return await treasury_out(session, handle)


@router.post(
    "/treasury/proposals", status_code=status.HTTP_201_CREATED, responses=answers(404, 409, 503)
)
async def propose(
    body: ProposalRequest, admin: AdminUser, session: SessionDep, handle: ChainDep
) -> ProposalOut:
    """Propose a Safe transaction: a transfer of the treasury's tokens, a parameter's new
    value, a minter granted or revoked, an owner added or removed or a new threshold."""
    proposal = await service.propose(session, handle, actor=admin, request=body)
    return await one_proposal_out(session, handle, proposal)


@router.get("/treasury/proposals", responses=answers(404, 503))
async def list_proposals(
    user: CurrentUser,
    session: SessionDep,
    handle: ChainDep,
    page: PageParams,
    status: ProposalStatus | None = None,
) -> Page[ProposalOut]:
    """Proposals, newest first (users see the executed ones; operators all)."""
    found, total = await service.proposals(session, handle, actor=user, status=status, page=page)
    t = await service.treasury_of(session, handle)
    return page_of(await proposals_out(session, t, found), total, page)


@router.get("/treasury/proposals/{proposal_id}", responses=answers(404, 503))
async def read_proposal(
    proposal_id: uuid.UUID, user: CurrentUser, session: SessionDep, handle: ChainDep
) -> ProposalOut:
    proposal = await service.get_proposal(session, handle, actor=user, proposal_id=proposal_id)
    return await one_proposal_out(session, handle, proposal)


@router.post(
    "/treasury/proposals/{proposal_id}/{ballot}",
    status_code=status.HTTP_201_CREATED,
    responses=answers(403, 404, 409, 503),
)
async def vote(
    proposal_id: uuid.UUID,
    ballot: Literal["confirmations", "rejections"],
    body: VoteRequest,
    admin: AdminUser,
    session: SessionDep,
    handle: ChainDep,
    cipher: CipherDep,
) -> ProposalOut:
    """Confirm (`confirmations`) or vote against (`rejections`) as an owner: the platform
    signs with your operator key, or `signature` carries an external owner's signature of the
    `safe_tx_hash`. At the threshold the platform executes the proposal on chain; a proposal
    that can no longer reach it is rejected."""
    proposal = await service.vote(
        session,
        handle,
        cipher,
        proposal_id=proposal_id,
        actor=admin,
        approve=ballot == "confirmations",
        signature=body.signature,
    )
    return await one_proposal_out(session, handle, proposal)


async def parameter_out(session: AsyncSession, parameter: PlatformParameter) -> ParameterOut:
    return ParameterOut(
        name=parameter.name,
        value=parameter.value,
        updated_at=parameter.updated_at,
        governed=await service.is_governed(session),
    )


@router.get("/admin/parameters")
async def list_parameters(_: AdminUser, session: SessionDep) -> list[ParameterOut]:
    return [await parameter_out(session, p) for p in await service.list_parameters(session)]


@router.get("/admin/parameters/{name}", responses=answers(404))
async def read_parameter(name: str, _: AdminUser, session: SessionDep) -> ParameterOut:
    return await parameter_out(session, await service.get_parameter(session, name))


@router.put("/admin/parameters/{name}", responses=answers(404, 409))
async def update_parameter(
    name: str, body: ParameterUpdate, admin: AdminUser, session: SessionDep
) -> ParameterOut:
    """Set a parameter — only while no treasury exists; then only a proposal changes it
    (409 governed_by_treasury)."""
    parameter = await service.set_parameter(session, name, body.value, actor_id=admin.id)
    return await parameter_out(session, parameter)
