"""The metered resources every context speaks of, with their units."""

from __future__ import annotations

from enum import StrEnum


class Resource(StrEnum):
    ELECTRICITY = "E"
    HEAT = "H"
    WATER = "W"

    @property
    def unit(self) -> str:
        return "m3" if self is Resource.WATER else "kWh"

    @property
    def label(self) -> str:
        return {"E": "Electricity", "H": "Heat", "W": "Water"}[self.value]


CURRENCY = "RUB"
