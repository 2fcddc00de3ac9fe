"""A deposit's reported statuses, delivered any number of times in any order: each money
effect happens once, and GCC exists exactly while the bank holds the roubles."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mornet.bank.lifecycle import DepositState, Effect, apply
from mornet.bank.protocol import PaymentStatus as S

PAID = [S.NEW, S.FORM_SHOWED, S.AUTHORIZED, S.CONFIRMED]
REFUNDED = [*PAID, S.REFUNDED]
DECLINED = [S.NEW, S.FORM_SHOWED, S.REJECTED]
CHECKED = [S.NEW, S.AUTHORIZED, S.CONFIRM_CHECKING, S.CONFIRMED]


def _replay(reports: list[S]) -> tuple[DepositState, list[Effect]]:
    state, effects = DepositState(), []
    for reported in reports:
        state, done = apply(state, reported)
        effects += done
        # GCC minted minus GCC burned is exactly what the bank holds, after every step.
        minted = effects.count(Effect.MINT) - effects.count(Effect.BURN_REFUND)
        assert minted == (1 if state.holds_money else 0)
    return state, effects


def _deliveries(life: list[S]) -> st.SearchStrategy[list[S]]:
    """Each status of a payment's life delivered 1 to 10 times, in any order."""
    return st.lists(st.integers(1, 10), min_size=len(life), max_size=len(life)).flatmap(
        lambda counts: st.permutations(
            [status for status, n in zip(life, counts, strict=True) for _ in range(n)]
        )
    )


@given(_deliveries(PAID))
def test_a_paid_deposit_mints_once_whatever_the_order(reports: list[S]) -> None:
    state, effects = _replay(reports)
    assert effects == [Effect.MINT]
    assert state.status == S.CONFIRMED
    assert state.holds_money


@given(_deliveries(CHECKED))
def test_confirm_checking_resolves_to_one_mint(reports: list[S]) -> None:
    _, effects = _replay(reports)
    assert effects == [Effect.MINT]


@given(_deliveries(DECLINED))
def test_a_declined_deposit_mints_nothing(reports: list[S]) -> None:
    state, effects = _replay(reports)
    assert effects == []
    assert state.status == S.REJECTED
    assert not state.holds_money


@given(_deliveries(REFUNDED))
def test_a_refund_leaves_no_gcc_whatever_the_order(reports: list[S]) -> None:
    state, effects = _replay(reports)
    assert state.status == S.REFUNDED
    assert not state.holds_money
    # Confirmed first: minted then burned once. Refund seen first: nothing either way.
    assert effects in ([Effect.MINT, Effect.BURN_REFUND], [])


def test_a_status_going_backwards_changes_nothing() -> None:
    state, _ = _replay(PAID)
    assert apply(state, S.AUTHORIZED) == (state, [])
    assert apply(state, S.CONFIRMED) == (state, [])


def test_contradictions_go_to_an_operator() -> None:
    confirmed, _ = _replay(PAID)
    assert apply(confirmed, S.REJECTED) == (confirmed, [Effect.ALERT])
    partial, effects = apply(confirmed, S.PARTIAL_REFUNDED)
    assert effects == [Effect.ALERT]
    assert partial.holds_money  # until an operator settles the part that went back
