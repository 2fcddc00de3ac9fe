"""MorNet: household utility telemetry priced by regional tariffs and settled in tokens."""

__version__ = "0.1.0"
