"""A wallet's history as people read it: each move, with the periods it settles when
settlement made it (served by the REST route, the GraphQL type and the page alike)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from mornet.tokens import service as tokens
from mornet.wallets import service
from mornet.wallets.schemas import HistoryEntryOut
from mornet.wallets.service import Wallet


async def history_out(
    session: AsyncSession, wallet: Wallet, *, limit: int = 100
) -> list[HistoryEntryOut]:
    entries = await service.history(session, wallet, limit=limit)
    settles = await tokens.periods_settled_by(
        session, wallet.user_id, [e.idempotency_key for e in entries]
    )
    return [
        HistoryEntryOut.model_validate(
            {
                **{f: getattr(e, f) for f in HistoryEntryOut.model_fields if f != "settles"},
                "settles": settles.get(e.idempotency_key, []),
            }
        )
        for e in entries
    ]
