"""A deposit's life as the bank reports it, and what each report makes the platform do.

The bank resends notifications until it gets `OK`, and they arrive out of order: the same
status many times, AUTHORIZED after CONFIRMED, REFUNDED before CONFIRMED. So a deposit never
moves backwards — a status ranked at or below the current one changes nothing — and each
money effect happens once: GCC is minted the first time the deposit reaches CONFIRMED, and
burned once if it is later refunded or reversed. A confirmation that arrives after the money
went back (REFUNDED seen first) mints nothing: the roubles are not held, so neither is GCC.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from mornet.bank.protocol import PaymentStatus as S

_RANK = {
    S.NEW: 0,
    S.FORM_SHOWED: 1,
    S.AUTHORIZING: 2,
    S.AUTHORIZED: 3,
    S.CONFIRMING: 4,
    S.CONFIRM_CHECKING: 5,
    # Outcomes: the money is held (CONFIRMED) or never was (the failures).
    S.CONFIRMED: 6,
    S.REJECTED: 6,
    S.DEADLINE_EXPIRED: 6,
    S.CANCELED: 6,
    # After a confirmation: part or all of the money went back.
    S.PARTIAL_REFUNDED: 7,
    S.REFUNDED: 8,
    S.REVERSED: 8,
}
_FAILED = frozenset({S.REJECTED, S.DEADLINE_EXPIRED, S.CANCELED})
_RETURNED = frozenset({S.REFUNDED, S.REVERSED})


class Effect(StrEnum):
    MINT = "mint"
    """Mint the deposit's amount in GCC to the depositor's wallet."""
    BURN_REFUND = "burn_refund"
    """The roubles went back: burn the GCC minted for them (or record a debt)."""
    ALERT = "alert"
    """Contradictory reports (confirmed and failed, a partial refund): an operator decides."""


@dataclass(frozen=True)
class DepositState:
    status: S = S.NEW
    minted: bool = False
    refunded: bool = False

    @property
    def holds_money(self) -> bool:
        """Whether the bank holds the deposit's roubles for the platform now."""
        return self.minted and not self.refunded


def apply(state: DepositState, reported: S) -> tuple[DepositState, list[Effect]]:
    """The state after the bank reports `reported`, and the effects to carry out (each at
    most once over any sequence of reports)."""
    if _RANK[reported] < _RANK[state.status]:
        return state, []  # late or repeated news
    if _RANK[reported] == _RANK[state.status]:
        if reported != state.status and {reported, state.status} & {S.CONFIRMED}:
            return state, [Effect.ALERT]  # confirmed and failed: the bank contradicts itself
        return state, []
    effects: list[Effect] = []
    new = replace(state, status=reported)
    if reported == S.CONFIRMED and not state.minted:
        new = replace(new, minted=True)
        effects.append(Effect.MINT)
    elif reported in _RETURNED and state.minted and not state.refunded:
        new = replace(new, refunded=True)
        effects.append(Effect.BURN_REFUND)
    elif reported == S.PARTIAL_REFUNDED or (reported in _FAILED and state.minted):
        effects.append(Effect.ALERT)
    return new, effects
