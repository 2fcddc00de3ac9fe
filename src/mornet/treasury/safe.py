"""The Safe v1.4.1 contracts (their ABIs and bytecode as safe-eth-py ships them) and the
transactions the treasury builds with them: pure encoding, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache
from typing import Any

from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from safe_eth.eth.contracts import load_contract_interface
from safe_eth.safe.safe_signature import SafeSignature, SafeSignatureType
from safe_eth.safe.safe_tx import SafeTx
from web3 import Web3
from web3.contract import Contract

from mornet.chain.contracts import CompiledContract, compiled_parameters, compiled_token

SAFE_VERSION = "1.4.1"
NULL_ADDRESS = "0x0000000000000000000000000000000000000000"
SENTINEL_OWNERS = "0x0000000000000000000000000000000000000001"
"""The head of the Safe's linked list of owners (removing the first owner names it as prev)."""

# The Safe's own infrastructure, deployed once per chain, and what the treasury adds.
SINGLETON = "Safe_V1_4_1.json"
PROXY_FACTORY = "ProxyFactory_V1_4_1.json"
FALLBACK_HANDLER = "CompatibilityFallbackHandler_V1_4_1.json"
MULTI_SEND = "MultiSend_V1_4_1.json"
PARAMETERS = "parameters"
INFRASTRUCTURE = (SINGLETON, PROXY_FACTORY, FALLBACK_HANDLER, MULTI_SEND, PARAMETERS)


class SafeOperation(IntEnum):
    CALL = 0
    DELEGATE_CALL = 1


_W3 = Web3()  # encoding only: it never connects


@lru_cache(maxsize=8)
def interface(name: str) -> CompiledContract:
    """ABI and creation bytecode of one contract (`PARAMETERS`: ours, compiled from Vyper)."""
    if name == PARAMETERS:
        return compiled_parameters()
    shipped = load_contract_interface(name)
    return CompiledContract(abi=shipped["abi"], bytecode=shipped["bytecode"])


def contract(name: str) -> type[Contract]:
    compiled = interface(name)
    return _W3.eth.contract(abi=compiled.abi, bytecode=compiled.bytecode)


def creation_code(name: str) -> bytes:
    return bytes(HexBytes(contract(name).constructor().data_in_transaction))


def calldata(name: str, function: str, *args: Any) -> bytes:
    """ABI-encoded call of `function` on a contract of kind `name`."""
    return bytes(HexBytes(contract(name).encode_abi(function, args=list(args))))


def token_call(function: str, *args: Any) -> bytes:
    compiled = compiled_token()
    token = _W3.eth.contract(abi=compiled.abi)
    return bytes(HexBytes(token.encode_abi(function, args=list(args))))


def setup_call(owners: list[str], threshold: int, fallback_handler: str) -> bytes:
    """The Safe proxy's initializer: owners, threshold and fallback handler, nothing else."""
    return calldata(
        SINGLETON,
        "setup",
        [to_checksum_address(o) for o in owners],
        threshold,
        NULL_ADDRESS,
        b"",
        to_checksum_address(fallback_handler),
        NULL_ADDRESS,
        0,
        NULL_ADDRESS,
    )


def parameter_key(name: str) -> bytes:
    """A parameter's name as the contract's 32-byte key (ASCII, zero-padded on the right)."""
    raw = name.encode("ascii")
    if len(raw) > 32:
        raise ValueError("a parameter name has at most 32 characters")
    return raw.ljust(32, b"\0")


def multi_send(calls: list[tuple[str, bytes]]) -> bytes:
    """`multiSend` data for plain calls [(to, data)], each packed as operation (1 byte), to
    (20), value (32), data length (32), data — the Safe runs it by delegate call."""
    packed = b"".join(
        bytes([SafeOperation.CALL])
        + bytes(HexBytes(to_checksum_address(to)))
        + (0).to_bytes(32, "big")
        + len(data).to_bytes(32, "big")
        + data
        for to, data in calls
    )
    return calldata(MULTI_SEND, "multiSend", packed)


@dataclass(frozen=True)
class SafeTransaction:
    """What a proposal asks the Safe to do, as the Safe hashes it (no gas refunds: the
    operator relays and pays)."""

    safe: str
    to: str
    value: int
    data: bytes
    operation: SafeOperation
    nonce: int

    def _safe_tx(self, chain_id: int, signatures: bytes = b"") -> SafeTx:
        return SafeTx(
            None,  # type: ignore[arg-type]  # with nonce, version and chain id it needs no client
            to_checksum_address(self.safe),
            to_checksum_address(self.to),
            self.value,
            self.data,
            int(self.operation),
            0,
            0,
            0,
            None,
            None,
            signatures=signatures,
            safe_nonce=self.nonce,
            safe_version=SAFE_VERSION,
            chain_id=chain_id,
        )

    def hash(self, chain_id: int) -> bytes:
        """The EIP-712 SafeTx hash the owners sign."""
        return bytes(self._safe_tx(chain_id).safe_tx_hash)

    def exec_call(self, signatures: bytes) -> bytes:
        """`execTransaction` data carrying the owners' signatures (sorted by owner)."""
        return calldata(
            SINGLETON,
            "execTransaction",
            to_checksum_address(self.to),
            self.value,
            self.data,
            int(self.operation),
            0,
            0,
            0,
            NULL_ADDRESS,
            NULL_ADDRESS,
            signatures,
        )


class BadSignature(ValueError):
    pass


def signer_of(signature: bytes, safe_tx_hash: bytes) -> str:
    """The owner one 65-byte signature speaks for: an EIP-712 signature of the hash, or an
    `eth_sign` one (v + 4), as Safe accepts them. Contract and pre-approved signatures are not
    taken here: an external owner signs with a key."""
    if len(signature) != 65:
        raise BadSignature("a signature is 65 bytes: r (32), s (32), v (1)")
    try:
        [parsed] = SafeSignature.parse_signature(signature, safe_tx_hash)
        if parsed.signature_type not in (SafeSignatureType.EOA, SafeSignatureType.ETH_SIGN):
            raise BadSignature("only a key's signature (v 27/28, or 31/32 for eth_sign) counts")
        return to_checksum_address(parsed.owner)
    except BadSignature:
        raise
    except Exception as exc:  # the parser's own errors: a malformed r/s/v
        raise BadSignature(f"the signature cannot be read: {exc}") from exc


def joined_signatures(by_owner: dict[str, bytes]) -> bytes:
    """Signatures in ascending owner order, as `execTransaction` checks them."""
    return b"".join(by_owner[o] for o in sorted(by_owner, key=lambda a: int(a, 16)))
