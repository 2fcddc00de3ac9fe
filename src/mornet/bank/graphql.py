"""GraphQL types, queries and mutations of the bank context."""

from __future__ import annotations

from decimal import Decimal

import strawberry

from mornet.bank import service
from mornet.bank.dependencies import bank_of
from mornet.bank.schemas import DepositOut, DepositRequest
from mornet.graphql import Info, validated
from mornet.pagination import MAX_LIMIT, PageRequest


@strawberry.experimental.pydantic.type(model=DepositOut, all_fields=True, name="Deposit")
class DepositType:
    """The REST schema, served as a GraphQL type."""


@strawberry.type
class BankQuery:
    @strawberry.field(description="The caller's deposits, newest first.")
    async def deposits(self, info: Info) -> list[DepositType]:
        user = await info.context.user()
        deposits, _ = await service.deposits_of(
            info.context.session, user.id, PageRequest(limit=MAX_LIMIT)
        )
        return [DepositType.from_pydantic(DepositOut.model_validate(d)) for d in deposits]


@strawberry.type
class BankMutation:
    @strawberry.mutation(description="Open a deposit of `amount` RUB; pay at its paymentUrl.")
    async def deposit(self, info: Info, amount: Decimal) -> DepositType:
        user = await info.context.user()
        body = validated(DepositRequest, amount=amount)
        deposit = await service.open_deposit(
            info.context.session,
            bank_of(info.context.platform),
            user_id=user.id,
            amount=body.amount,
        )
        return DepositType.from_pydantic(DepositOut.model_validate(deposit))
