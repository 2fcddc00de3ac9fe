"""Input types: the schema and the validator accept exactly the same values."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from mornet.chain.contracts import TOKENS
from mornet.chain.schemas import TokenSymbol
from mornet.fields import DecimalText, Moment

PRICE = DecimalText(places=4, digits=10, positive=True)
INDEX = DecimalText(places=6, digits=12, positive=False)


def _accepts(kind: DecimalText, value: object) -> bool:
    try:
        TypeAdapter(Annotated[Decimal, kind]).validate_python(value)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize(
    ("text", "price", "index"),
    [
        ("1", True, True),
        ("0", False, True),
        ("0.0000", False, True),
        ("0.0001", True, True),
        ("0.00001", False, True),  # five places: more than a price has
        ("12.3456", True, True),
        ("9999999999.9999", True, True),
        ("10000000000", False, True),
        ("-1", False, False),
        ("1e3", False, False),
        ("01", False, False),
        ("1.", False, False),
        (".5", False, False),
        ("", False, False),
    ],
)
def test_amount_spellings(text: str, price: bool, index: bool) -> None:
    assert _accepts(PRICE, text) is price
    assert _accepts(INDEX, text) is index


@given(st.from_regex(re.compile(PRICE.pattern)))
def test_every_string_the_schema_allows_is_accepted_exactly(text: str) -> None:
    value = TypeAdapter(Annotated[Decimal, PRICE]).validate_python(text)
    assert value > 0
    assert value == Decimal(text)


@given(st.text(alphabet="0123456789.-+eE ", max_size=16))
def test_what_the_server_accepts_the_schema_allows(text: str) -> None:
    assert _accepts(PRICE, text) == bool(re.search(PRICE.pattern, text))


def test_whole_numbers_are_exact_and_fractions_must_be_strings() -> None:
    assert _accepts(PRICE, 12)
    assert _accepts(PRICE, 12.0)
    assert not _accepts(PRICE, 12.5)
    assert not _accepts(PRICE, 0)
    assert not _accepts(PRICE, True)
    assert not _accepts(PRICE, 10**10)


def test_a_moment_is_iso_8601_never_a_unix_time() -> None:
    adapter = TypeAdapter(Moment)
    assert adapter.validate_python("2026-01-01T00:00:00Z").year == 2026
    for bad in ("0.5", "1700000000", "2026-01-01"):
        with pytest.raises(ValidationError):
            adapter.validate_python(bad)


def test_the_documented_tokens_are_the_deployed_ones() -> None:
    assert set(get_args(TokenSymbol)) == set(TOKENS)


def test_text_is_bounded_as_sent_and_stored_trimmed() -> None:
    from mornet.fields import TrimmedText

    adapter = TypeAdapter(Annotated[str, TrimmedText(5)])
    assert adapter.validate_python("  ab ") == "ab"
    for bad in ("", "   ", " abcde"):  # nothing but whitespace; six characters as sent
        with pytest.raises(ValidationError):
            adapter.validate_python(bad)
