"""GraphQL types, queries and mutations of the wallets context."""

from __future__ import annotations

import uuid
from decimal import Decimal

import strawberry

from mornet.chain.dependencies import chain_of
from mornet.errors import NotFound
from mornet.graphql import Info, validated
from mornet.wallets import service
from mornet.wallets.history import history_out
from mornet.wallets.models import Wallet
from mornet.wallets.schemas import HistoryEntryOut, TransferRequest


@strawberry.type(name="TokenBalance")
class BalanceType:
    token: str
    amount: Decimal
    held: Decimal = strawberry.field(
        default=Decimal(0), description="What open market orders hold of it."
    )


@strawberry.experimental.pydantic.type(model=HistoryEntryOut, all_fields=True, name="WalletEntry")
class EntryType:
    """One line of a wallet's history: the REST schema, served as a GraphQL type."""


@strawberry.federation.type(name="Wallet", keys=["address"])
class WalletType:
    address: str
    balances: list[BalanceType]
    transactions: list[EntryType]

    @classmethod
    async def of(cls, info: Info, wallet: Wallet) -> WalletType:
        balances = await service.balances(chain_of(info.context.platform), wallet.address)
        held = await service.held_tokens(info.context.session, wallet.user_id)
        entries = await history_out(info.context.session, wallet)
        return cls(
            address=wallet.address,
            balances=[
                BalanceType(token=t, amount=a, held=held.get(t, Decimal(0)))
                for t, a in balances.items()
            ],
            transactions=[EntryType.from_pydantic(e) for e in entries],
        )

    @classmethod
    async def resolve_reference(cls, info: Info, address: object) -> WalletType:
        """A reference from another subgraph: only the caller's own wallet resolves."""
        async with info.context.reference_lock:
            user = await info.context.user()
            wallet = await service.wallet_of(info.context.session, user.id)
            if str(address).lower() != wallet.address.lower():
                raise NotFound("no such wallet", code="wallet_not_found")
            return await cls.of(info, wallet)


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
        return await WalletType.of(info, await service.wallet_of(info.context.session, user.id))


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
