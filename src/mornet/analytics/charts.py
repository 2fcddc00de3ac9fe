"""SVG charts drawn on the server: a series becomes a polyline with its name written at its
end and a dash pattern of its own, so a chart reads without colour."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from mornet.analytics.schemas import SeriesOut

WIDTH, HEIGHT = 600, 170
LEFT, RIGHT, TOP, BOTTOM = 10, 110, 22, 28
DASHES = ("", "6 3", "2 3", "8 3 2 3")


@dataclass(frozen=True)
class Line:
    label: str
    points: str
    """The SVG polyline's points."""
    dash: str
    last: str
    end_y: float


@dataclass(frozen=True)
class Chart:
    title: str
    unit: str
    lines: list[Line]
    top: str
    """The value at the top of the plot (the bottom is 0)."""
    first: str
    last: str
    width: int = WIDTH
    height: int = HEIGHT


def plain(value: Decimal) -> str:
    """A number as people write it: no exponent, no trailing zeros."""
    return f"{value.normalize():f}" if value else "0"


def chart(title: str, labelled: list[tuple[str, SeriesOut]]) -> Chart:
    """One chart of several series on a common scale from 0 to their largest value."""
    values = [p.value for _, s in labelled for p in s.points]
    top = max([*values, Decimal(0)])
    span = top if top > 0 else Decimal(1)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    lines = []
    for index, (label, series) in enumerate(labelled):
        n = len(series.points)
        coordinates = []
        for i, point in enumerate(series.points):
            x = LEFT + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)
            y = TOP + plot_h - float(point.value / span) * plot_h
            coordinates.append((x, y))
        lines.append(
            Line(
                label=label,
                points=" ".join(f"{x:.1f},{y:.1f}" for x, y in coordinates),
                dash=DASHES[index % len(DASHES)],
                last=plain(series.points[-1].value) if series.points else "0",
                end_y=coordinates[-1][1] if coordinates else TOP + plot_h,
            )
        )
    points = labelled[0][1].points if labelled else []
    stamp = "%Y-%m-%d %H:%M" if labelled and labelled[0][1].granularity == "hour" else "%Y-%m-%d"
    return Chart(
        title=title,
        unit=labelled[0][1].unit if labelled else "",
        lines=lines,
        top=plain(top),
        first=points[0].t.strftime(stamp) if points else "",
        last=points[-1].t.strftime(stamp) if points else "",
    )
