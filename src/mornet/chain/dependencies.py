"""What chain takes from the running platform, for the routes of every context that moves
tokens: the connected chain, or None while it is not (services answer 503 then)."""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends, Request

from mornet.chain.service import ChainHandle
from mornet.dependencies import platform_of
from mornet.errors import may_answer


class ChainHost(Protocol):
    chain: ChainHandle | None


def chain_of(platform: object) -> ChainHandle | None:
    """The chain of the composition root (the runtime), narrowed to what chain knows of it."""
    host: ChainHost = platform  # type: ignore[assignment]
    return host.chain


@may_answer(503)
async def get_chain(request: Request) -> ChainHandle | None:
    return chain_of(platform_of(request))


ChainDep = Annotated[ChainHandle | None, Depends(get_chain)]
