# pragma version ~=0.4.3
"""
@title MorNet token
@license GPL-3.0-or-later
@notice One ERC-20 contract, deployed once per MorNet token (GCC, E, H, W, GCM), built on
        snekmate's audited `erc20` module: 18 decimals, minters, burn, EIP-2612 permit.
        On top of it, the platform's minters run bounded batches (mint, burn, transfer for
        custodial wallets) identified by a 32-byte batch id. A batch id executes at most once,
        ever: a retried or replayed batch reverts instead of moving tokens twice.
"""

from ethereum.ercs import IERC20
implements: IERC20

from ethereum.ercs import IERC20Detailed
implements: IERC20Detailed

from snekmate.auth import ownable as ow
initializes: ow

from snekmate.tokens import erc20
initializes: erc20[ownable := ow]

exports: erc20.__interface__


# @dev The most accounts one batch may touch, so a batch always fits in a block.
MAX_BATCH: public(constant(uint256)) = 256

# @dev Batch ids that already executed.
batch_executed: public(HashMap[bytes32, bool])


event BatchExecuted:
    batch_id: indexed(bytes32)
    kind: uint8
    size: uint256


KIND_MINT: constant(uint8) = 1
KIND_BURN: constant(uint8) = 2
KIND_TRANSFER: constant(uint8) = 3


@deploy
@payable
def __init__(name_: String[25], symbol_: String[5]):
    ow.__init__()
    erc20.__init__(name_, symbol_, 18, "MorNet", "1")


@internal
def _open_batch(batch_id: bytes32, size: uint256, kind: uint8):
    assert erc20.is_minter[msg.sender], "mornet: access is denied"
    assert size > 0, "mornet: empty batch"
    assert not self.batch_executed[batch_id], "mornet: batch already executed"
    self.batch_executed[batch_id] = True
    log BatchExecuted(batch_id=batch_id, kind=kind, size=size)


@external
def mint_batch(batch_id: bytes32, accounts: DynArray[address, MAX_BATCH], amounts: DynArray[uint256, MAX_BATCH]):
    """
    @dev Mints `amounts[i]` to `accounts[i]`. Minters only; `batch_id` never twice.
    """
    assert len(accounts) == len(amounts), "mornet: length mismatch"
    self._open_batch(batch_id, len(accounts), KIND_MINT)
    for i: uint256 in range(len(accounts), bound=MAX_BATCH):
        erc20._mint(accounts[i], amounts[i])


@external
def burn_batch(batch_id: bytes32, accounts: DynArray[address, MAX_BATCH], amounts: DynArray[uint256, MAX_BATCH]):
    """
    @dev Burns `amounts[i]` from `accounts[i]` (settlement, withdrawal). Minters only.
    """
    assert len(accounts) == len(amounts), "mornet: length mismatch"
    self._open_batch(batch_id, len(accounts), KIND_BURN)
    for i: uint256 in range(len(accounts), bound=MAX_BATCH):
        erc20._burn(accounts[i], amounts[i])


@external
def transfer_batch(
    batch_id: bytes32,
    senders: DynArray[address, MAX_BATCH],
    receivers: DynArray[address, MAX_BATCH],
    amounts: DynArray[uint256, MAX_BATCH],
):
    """
    @dev Moves `amounts[i]` from `senders[i]` to `receivers[i]` on behalf of custodial
         wallets, so users never need gas. Minters only.
    """
    assert len(senders) == len(amounts) and len(receivers) == len(amounts), "mornet: length mismatch"
    self._open_batch(batch_id, len(senders), KIND_TRANSFER)
    for i: uint256 in range(len(senders), bound=MAX_BATCH):
        erc20._transfer(senders[i], receivers[i], amounts[i])
