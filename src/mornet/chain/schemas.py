"""The chain's public shapes, for every context that moves tokens."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import Field, PlainSerializer, StringConstraints

from mornet.chain.contracts import DECIMALS

MAX_TOKENS = Decimal("1e30")
"""The largest amount one move may carry (far above any supply, far below 2^256 base units)."""

IdempotencyKey = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=150)
]
TokenSymbol = Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, max_length=8)]
TokenAmount = Annotated[
    Decimal,
    Field(
        gt=0,
        le=MAX_TOKENS,
        decimal_places=DECIMALS,
        allow_inf_nan=False,
        description=f"Tokens, as a decimal string: positive, at most {DECIMALS} decimal "
        "places (never rounded), at most 10^30",
    ),
]


def plain(value: Decimal) -> str:
    """A decimal in plain notation: `100`, `0.000000000000000001` — never `1E+2`/`1E-18`."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


Tokens = Annotated[Decimal, PlainSerializer(plain, return_type=str, when_used="json")]
"""A token amount in a response, written in plain notation."""
