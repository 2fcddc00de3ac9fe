"""GraphQL types, queries and mutations of the bank context."""

from __future__ import annotations

import uuid
from decimal import Decimal

import strawberry

from mornet.bank import service
from mornet.bank.dependencies import bank_of
from mornet.bank.schemas import (
    CardOut,
    DepositOut,
    DepositRequest,
    WithdrawalOut,
    WithdrawalRequest,
)
from mornet.chain.dependencies import chain_of
from mornet.graphql import Info, validated
from mornet.pagination import MAX_LIMIT, PageRequest


@strawberry.experimental.pydantic.type(model=DepositOut, all_fields=True, name="Deposit")
class DepositType:
    """The REST schema, served as a GraphQL type."""


@strawberry.experimental.pydantic.type(model=CardOut, all_fields=True, name="BankCard")
class CardType:
    """A card bound at the bank for payouts (masked number only)."""


@strawberry.experimental.pydantic.type(model=WithdrawalOut, all_fields=True, name="Withdrawal")
class WithdrawalType:
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

    @strawberry.field(description="The caller's withdrawals, newest first.")
    async def withdrawals(self, info: Info) -> list[WithdrawalType]:
        user = await info.context.user()
        withdrawals, _ = await service.withdrawals_of(
            info.context.session, user.id, PageRequest(limit=MAX_LIMIT)
        )
        return [WithdrawalType.from_pydantic(WithdrawalOut.model_validate(w)) for w in withdrawals]

    @strawberry.field(description="The caller's cards bound for payouts.")
    async def bank_cards(self, info: Info) -> list[CardType]:
        user = await info.context.user()
        cards = await service.cards_of(info.context.session, user.id)
        return [CardType.from_pydantic(CardOut.model_validate(c)) for c in cards]


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

    @strawberry.mutation(
        description="Withdraw `amount` GCC as roubles to a bound card (held, paid, burned). "
        "A retry with the same idempotencyKey returns the same withdrawal."
    )
    async def withdraw(
        self, info: Info, amount: Decimal, card_id: uuid.UUID, idempotency_key: str
    ) -> WithdrawalType:
        user = await info.context.user()
        body = validated(
            WithdrawalRequest, amount=amount, card_id=card_id, idempotency_key=idempotency_key
        )
        withdrawal, _ = await service.open_withdrawal(
            info.context.session,
            bank_of(info.context.platform),
            chain_of(info.context.platform),
            user_id=user.id,
            amount=body.amount,
            card_id=body.card_id,
            idempotency_key=body.idempotency_key,
        )
        return WithdrawalType.from_pydantic(WithdrawalOut.model_validate(withdrawal))

    @strawberry.mutation(description="Start binding a card: open its formUrl (the bank's form).")
    async def bind_card(self, info: Info) -> CardType:
        user = await info.context.user()
        card = await service.bind_card(
            info.context.session, bank_of(info.context.platform), user_id=user.id
        )
        return CardType.from_pydantic(CardOut.model_validate(card))
