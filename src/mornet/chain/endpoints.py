"""REST routes of the chain: where it is and which contracts it runs."""

from __future__ import annotations

from fastapi import APIRouter

from mornet.chain.dependencies import ChainDep
from mornet.chain.errors import ChainUnavailable
from mornet.chain.schemas import ChainOut

router = APIRouter(prefix="/api", tags=["chain"])


@router.get("/chain")
async def chain_info(chain: ChainDep) -> ChainOut:
    if chain is None:
        raise ChainUnavailable()
    return ChainOut(
        chain_id=chain.chain_id,
        rpc_url=chain.client.public_rpc_url,
        operator=chain.signer,
        contracts=chain.contracts,
    )
