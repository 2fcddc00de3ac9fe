"""The platform's contracts, compiled from Vyper source with snekmate on the import path."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

TOKEN_SOURCE = "MornetToken.vy"  # noqa: S105  (a file name)
PARAMETERS_SOURCE = "Parameters.vy"

# symbol → on-chain name (snekmate allows 25 characters for a name, 5 for a symbol).
TOKENS: dict[str, str] = {
    "GCC": "MorNet Green Coin",
    "E": "MorNet Electricity kWh",
    "H": "MorNet Heat kWh",
    "W": "MorNet Water m3",
    "GCM": "MorNet Cost Index",
}
DECIMALS = 18
MAX_BATCH = 256
"""Must equal MAX_BATCH in the contract: the most accounts one batch may touch."""


@dataclass(frozen=True)
class CompiledContract:
    abi: list[dict[str, Any]]
    bytecode: str


def contracts_dir() -> Path:
    """Vyper sources: shipped inside the wheel, or the repository's `contracts/`."""
    packaged = Path(__file__).parent / "contracts"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "contracts"


def compiled_token() -> CompiledContract:
    return compiled(TOKEN_SOURCE)


def compiled_parameters() -> CompiledContract:
    """The governed parameters' contract (owned by the treasury's Safe)."""
    return compiled(PARAMETERS_SOURCE)


@lru_cache(maxsize=4)
def compiled(source_name: str) -> CompiledContract:
    from vyper.compiler import compile_from_file_input
    from vyper.compiler.input_bundle import FilesystemInputBundle

    search_paths = [contracts_dir(), *(Path(p) for p in sys.path if p)]
    bundle = FilesystemInputBundle(search_paths)
    source = bundle.load_file(source_name)
    output = compile_from_file_input(
        source, input_bundle=bundle, output_formats=["abi", "bytecode"]
    )
    return CompiledContract(abi=output["abi"], bytecode=output["bytecode"])
