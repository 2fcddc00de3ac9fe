"""Errors of the chain that other contexts answer with."""

from __future__ import annotations

from mornet.errors import MornetError


class ChainUnavailable(MornetError):
    status = 503
    code = "chain_unavailable"

    def __init__(self) -> None:
        super().__init__("the chain is not connected; try again shortly")
