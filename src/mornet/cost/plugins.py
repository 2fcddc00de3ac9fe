"""Cost plugins: how a sector prices a household's consumption. Plugins register under the
entry-point group `mornet.cost_plugins` (a tourism or agro plugin can be a package of its
own); the residential plugin ships with the platform and is the default."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib.metadata import entry_points
from typing import Protocol

from mornet.cost.rating import Line, PricePeriod, Use, rate
from mornet.errors import ValidationFailed
from mornet.resources import Resource

GROUP = "mornet.cost_plugins"
DEFAULT = "residential"


@dataclass(frozen=True)
class Consumption:
    """What a plugin prices: a household's uses per resource over a period, with the tariff
    timeline of its region for each resource."""

    household_id: uuid.UUID
    region: str
    start: datetime
    end: datetime
    uses: Mapping[Resource, Sequence[Use]]
    timelines: Mapping[Resource, Sequence[PricePeriod]]


class CostPlugin(Protocol):
    name: str

    def price(self, consumption: Consumption) -> list[Line]:
        """Priced lines, one per resource used."""
        ...


class ResidentialPlugin:
    """Households: every unit at the regional tariff in force when it was used."""

    name = DEFAULT

    def price(self, consumption: Consumption) -> list[Line]:
        return [
            rate(resource, uses, consumption.timelines.get(resource, ()))
            for resource, uses in sorted(consumption.uses.items())
            if any(use.quantity for use in uses)
        ]


class UnknownSector(ValidationFailed):
    code = "unknown_sector"


@cache
def installed() -> dict[str, CostPlugin]:
    """Every plugin installed, by name (loaded once)."""
    plugins: dict[str, CostPlugin] = {}
    for entry in entry_points(group=GROUP):
        plugin = entry.load()()
        plugins[plugin.name] = plugin
    return plugins


def plugin_for(sector: str | None) -> CostPlugin:
    """The plugin of a household's sector (residential when it has none)."""
    plugins = installed()
    name = sector or DEFAULT
    if name not in plugins:
        raise UnknownSector(
            f"no cost plugin for the sector {name!r}: installed are {', '.join(sorted(plugins))}"
        )
    return plugins[name]
