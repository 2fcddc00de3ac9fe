"""GraphQL types, queries and mutations of the wallets context."""

from __future__ import annotations

import uuid
from decimal import Decimal

import strawberry

from mornet.chain.dependencies import chain_of
from mornet.graphql import Info, validated
from mornet.wallets import service
from mornet.wallets.schemas import HistoryEntryOut, TransferRequest


@strawberry.type(name="TokenBalance")
class BalanceType:
    token: str
    amount: Decimal


@strawberry.experimental.pydantic.type(model=HistoryEntryOut, all_fields=True, name="WalletEntry")
class EntryType:
    """One line of a wallet's history: the REST schema, served as a GraphQL type."""


@strawberry.type(name="Wallet")
class WalletType:
    address: str
    balances: list[BalanceType]
    transactions: list[EntryType]


@strawberry.type(name="TransferResult")
class TransferType:
    operation_id: uuid.UUID
    status: str
    token: str
    amount: Decimal


@strawberry.type
class WalletsQuery:
    @strawberry.field(description="The caller's wallet: address, balances from the chain, history.")
    async def wallet(self, info: Info) -> WalletType:
        user = await info.context.user()
        session = info.context.session
        wallet = await service.wallet_of(session, user.id)
        balances = await service.balances(chain_of(info.context.platform), wallet)
        entries = await service.history(session, wallet)
        return WalletType(
            address=wallet.address,
            balances=[BalanceType(token=t, amount=a) for t, a in balances.items()],
            transactions=[
                EntryType.from_pydantic(HistoryEntryOut.model_validate(e, from_attributes=True))
                for e in entries
            ],
        )


@strawberry.type
class WalletsMutation:
    @strawberry.mutation(description="Send tokens to an email or address; the platform pays gas.")
    async def transfer(
        self, info: Info, token: str, to: str, amount: Decimal, idempotency_key: str
    ) -> TransferType:
        user = await info.context.user()
        body = validated(
            TransferRequest, token=token, to=to, amount=amount, idempotency_key=idempotency_key
        )
        operation = await service.transfer(
            info.context.session,
            chain_of(info.context.platform),
            user_id=user.id,
            token=body.token,
            to=body.to,
            amount=body.amount,
            idempotency_key=body.idempotency_key,
        )
        return TransferType(
            operation_id=operation.id,
            status=str(operation.status),
            token=operation.token,
            amount=body.amount,
        )
