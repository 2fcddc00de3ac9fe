from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from mornet.chain.schemas import TokenAmount, TokenSymbol
from mornet.fields import DecimalText
from mornet.treasury.models import ProposalStatus

ParameterValue = Annotated[Decimal, DecimalText(places=18, digits=30, positive=True)]
Account = Annotated[
    str,
    Field(
        min_length=1,
        max_length=320,
        description="An address, or an operator's (user's) email or id",
    ),
]
Description = Annotated[str, Field(max_length=2000)]
Nonce = Annotated[
    int | None,
    Field(
        default=None,
        ge=0,
        le=2**63 - 1,
        description="The Safe nonce to propose at (default: the Safe's next)",
    ),
]


class ParameterOut(BaseModel):
    name: str
    value: Decimal
    updated_at: datetime
    governed: bool = Field(description="Decided by the treasury: changed only by a proposal")


class ParameterUpdate(BaseModel):
    value: ParameterValue


class TreasuryCreate(BaseModel):
    owners: list[Account] = Field(min_length=1, max_length=10)
    threshold: int = Field(ge=1, le=10)


class OwnerOut(BaseModel):
    address: str
    user_id: uuid.UUID | None = Field(
        description="The operator account that signs for this owner (none: an external key)"
    )
    email: str | None


class TreasuryOut(BaseModel):
    status: str
    chain_id: int
    address: str | None = Field(description="The Safe's address")
    owners: list[OwnerOut]
    threshold: int
    nonce: int | None = Field(description="The Safe's nonce: the next proposal executes at it")
    balances: dict[str, Decimal] = Field(description="The Safe's tokens, read from the chain")
    parameters_contract: str | None
    error: str | None
    created_at: datetime
    activated_at: datetime | None


class TransferProposal(BaseModel):
    kind: Literal["transfer"]
    token: TokenSymbol
    to: Account
    amount: TokenAmount
    description: Description = ""
    nonce: Nonce = None


class ParameterProposal(BaseModel):
    kind: Literal["parameter"]
    name: str = Field(min_length=1, max_length=32)
    value: ParameterValue
    description: Description = ""
    nonce: Nonce = None


class MinterProposal(BaseModel):
    kind: Literal["minter"]
    action: Literal["grant", "revoke"]
    address: str = Field(min_length=42, max_length=42, pattern="^0x[0-9a-fA-F]{40}$")
    description: Description = ""
    nonce: Nonce = None


class OwnersProposal(BaseModel):
    kind: Literal["owners"]
    action: Literal["add", "remove", "threshold"]
    owner: Account | None = None
    threshold: int | None = Field(default=None, ge=1, le=10)
    description: Description = ""
    nonce: Nonce = None


ProposalRequest = Annotated[
    TransferProposal | ParameterProposal | MinterProposal | OwnersProposal,
    Field(discriminator="kind"),
]


class VoteRequest(BaseModel):
    signature: str | None = Field(
        default=None,
        pattern="^0x[0-9a-fA-F]{130}$",
        description="An external owner's signature of the proposal's safe_tx_hash (65 bytes); "
        "leave it out to sign with your own operator key",
    )


class VoteOut(BaseModel):
    owner: str
    created_at: datetime


class ProposalOut(BaseModel):
    id: uuid.UUID
    kind: str
    details: dict[str, Any]
    description: str
    to: str
    value: str
    data: str
    operation: int
    nonce: int
    safe_tx_hash: str
    status: ProposalStatus
    confirmations: list[VoteOut]
    rejections: list[VoteOut]
    confirmations_required: int = Field(description="The Safe's threshold")
    proposed_by: uuid.UUID | None
    tx_hash: str | None
    error: str | None
    created_at: datetime
    decided_at: datetime | None
