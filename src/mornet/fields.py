"""Input types whose OpenAPI schema says exactly what the server accepts.

Amounts: a money or token amount arrives as a decimal string (`"12.50"`) or a whole JSON
number (`12`), never a float with a fraction (it would not be exact). The schema's pattern and
the validator are built from the same numbers, so a generated client — or a fuzzer — finds no
value that the document allows and the server refuses, or the other way round.

Moments: ISO 8601 with a zone, never a number taken as a Unix time.

Text: bounded as sent, then trimmed — the schema's `maxLength` counts what the client sends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cached_property
from typing import Annotated, Any

from fastapi import Query
from pydantic import AwareDatetime, BeforeValidator, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema


def _fraction(places: int) -> str:
    return rf"(\.[0-9]{{1,{places}}})?" if places else ""


def decimal_pattern(*, places: int, digits: int, positive: bool) -> str:
    """A regular expression for plain decimals with at most `digits` digits before the point
    and `places` after it; `positive` leaves out every spelling of zero."""
    whole = rf"[1-9][0-9]{{0,{digits - 1}}}{_fraction(places)}"
    if not positive:
        return rf"^(0{_fraction(places)}|{whole})$"
    # 0.x: a non-zero digit somewhere within the allowed places.
    tiny = "|".join(
        rf"0\.[0-9]{{{before}}}[1-9][0-9]{{0,{places - 1 - before}}}" for before in range(places)
    )
    return rf"^({whole}|{tiny})$" if places else rf"^{whole}$"


@dataclass(frozen=True)
class DecimalText:
    """`Annotated[Decimal, DecimalText(places=…, digits=…, positive=…)]`: one kind of amount
    (see the module's docstring)."""

    places: int
    digits: int
    positive: bool
    description: str = ""

    @cached_property
    def pattern(self) -> str:
        return decimal_pattern(places=self.places, digits=self.digits, positive=self.positive)

    @cached_property
    def bounds(self) -> tuple[int, int]:
        """The whole numbers accepted as JSON numbers."""
        return (1 if self.positive else 0), 10**self.digits - 1

    @property
    def rule(self) -> str:
        sign = "greater than 0" if self.positive else "0 or more"
        return f"{sign}, below 10^{self.digits}, at most {self.places} decimal places"

    def parse(self, value: object) -> Decimal:
        smallest, largest = self.bounds
        if isinstance(value, bool):
            raise ValueError(f"a decimal string is expected, {self.rule}")
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError(f"send a fractional amount as a decimal string, {self.rule}")
            value = int(value)
        if isinstance(value, int):
            if not smallest <= value <= largest:
                raise ValueError(f"the amount must be {self.rule}")
            return Decimal(value)
        if isinstance(value, Decimal):
            if not value.is_finite():
                raise ValueError(f"the amount must be {self.rule}")
            value = format(value, "f")
        if not isinstance(value, str) or not re.search(self.pattern, value):
            raise ValueError(f"the amount must be a plain decimal string, {self.rule}")
        try:
            return Decimal(value)
        except InvalidOperation as exc:  # the pattern admits only plain decimals
            raise ValueError(f"the amount must be {self.rule}") from exc

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_before_validator_function(self.parse, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        smallest, largest = self.bounds
        described = f"{self.description} " if self.description else ""
        return {
            "anyOf": [
                {"type": "string", "pattern": self.pattern},
                {"type": "integer", "minimum": smallest, "maximum": largest},
            ],
            "description": f"{described}A decimal: {self.rule}.",
        }


_ISO_DATE_START = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ]")


def _iso_text(value: object) -> object:
    # Pydantic would also take a number ("0.5") as a Unix time; the schema says date-time.
    if isinstance(value, str) and not _ISO_DATE_START.match(value):
        raise ValueError("an ISO 8601 date and time with its zone is expected")
    return value


Moment = Annotated[AwareDatetime, BeforeValidator(_iso_text)]
"""A point in time with its zone, written in ISO 8601 (`2026-01-01T00:00:00Z`)."""

FromQuery = Annotated[Moment | None, Query(alias="from", description="ISO 8601 with zone")]
"""A window's start as the query parameter `from`."""
ToQuery = Annotated[Moment | None, Query(alias="to", description="ISO 8601 with zone")]
"""A window's end as the query parameter `to`."""


@dataclass(frozen=True)
class TrimmedText:
    """`Annotated[str, TrimmedText(200)]`: at most `max_length` characters as sent, at least
    one that is not whitespace; stored without the surrounding whitespace."""

    max_length: int

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(
            str.strip, core_schema.str_schema(max_length=self.max_length, pattern=r"\S")
        )
