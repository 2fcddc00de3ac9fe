from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Sequence

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.db import locked_one
from mornet.treasury.models import (
    PlatformParameter,
    Proposal,
    ProposalStatus,
    ProposalVote,
    Treasury,
)


async def treasury_of_chain(
    session: AsyncSession, chain_id: int, *, lock: bool = False
) -> Treasury | None:
    if lock:
        return await locked_one(session, Treasury, Treasury.chain_id == chain_id)
    found: Treasury | None = await session.scalar(
        select(Treasury).where(Treasury.chain_id == chain_id)
    )
    return found


async def any_treasury(session: AsyncSession) -> bool:
    return (await session.scalar(select(Treasury.id).limit(1))) is not None


async def proposal(
    session: AsyncSession, proposal_id: uuid.UUID, *, lock: bool = False
) -> Proposal | None:
    if lock:
        return await locked_one(session, Proposal, Proposal.id == proposal_id)
    return await session.get(Proposal, proposal_id)


async def proposal_by_hash(session: AsyncSession, safe_tx_hash: str) -> Proposal | None:
    found: Proposal | None = await session.scalar(
        select(Proposal).where(Proposal.safe_tx_hash == safe_tx_hash)
    )
    return found


def proposals_query(
    treasury_id: uuid.UUID, statuses: Collection[ProposalStatus] | None
) -> Select[Proposal]:
    query = select(Proposal).where(Proposal.treasury_id == treasury_id)
    if statuses is not None:
        query = query.where(Proposal.status.in_(list(statuses)))
    return query.order_by(Proposal.created_at.desc(), Proposal.id)


async def proposals_in(
    session: AsyncSession, treasury_id: uuid.UUID, statuses: Collection[ProposalStatus]
) -> Sequence[Proposal]:
    found = await session.scalars(
        proposals_query(treasury_id, statuses).order_by(None).order_by(Proposal.nonce)
    )
    return found.all()


async def votes_of(
    session: AsyncSession, proposal_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, list[ProposalVote]]:
    votes: dict[uuid.UUID, list[ProposalVote]] = defaultdict(list)
    if not proposal_ids:
        return votes
    found = await session.scalars(
        select(ProposalVote)
        .where(ProposalVote.proposal_id.in_(list(proposal_ids)))
        .order_by(ProposalVote.created_at, ProposalVote.owner)
    )
    for vote in found:
        votes[vote.proposal_id].append(vote)
    return votes


async def vote(session: AsyncSession, proposal_id: uuid.UUID, owner: str) -> ProposalVote | None:
    return await session.get(ProposalVote, (proposal_id, owner))


async def parameters(session: AsyncSession) -> Sequence[PlatformParameter]:
    found = await session.scalars(select(PlatformParameter).order_by(PlatformParameter.name))
    return found.all()
