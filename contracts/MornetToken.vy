# pragma version ~=0.4.3
"""
@title MorNet token
@license GPL-3.0-or-later
@notice One ERC-20 contract, deployed once per MorNet token (GCC, E, H, W, GCM), built on
        snekmate's audited `erc20` module: 18 decimals, minters, burn, EIP-2612 permit.
        On top of it, the platform's minters run bounded batches (mint, burn, transfer for
        custodial wallets) identified by a 32-byte batch id. A batch id executes at most once,
        ever: a retried or replayed batch reverts instead of moving tokens twice.
        The owner (the DAO treasury's Safe, once it exists) marks accounts as protected:
        the minters' batches can never burn from or transfer out of them, so the operator
        key that runs routine work cannot touch the treasury's tokens.
"""

from ethereum.ercs import IERC20
implements: IERC20

from ethereum.ercs import IERC20Detailed
implements: IERC20Detailed

from snekmate.auth import ownable as ow
initializes: ow

from snekmate.tokens import erc20
initializes: erc20[ownable := ow]

# Everything of erc20 except `transfer_ownership`, which is redefined below.
exports: (
    erc20.DOMAIN_SEPARATOR,
    erc20.allowance,
    erc20.approve,
    erc20.balanceOf,
    erc20.burn,
    erc20.burn_from,
    erc20.decimals,
    erc20.eip712Domain,
    erc20.is_minter,
    erc20.mint,
    erc20.name,
    erc20.nonces,
    erc20.owner,
    erc20.permit,
    erc20.renounce_ownership,
    erc20.set_minter,
    erc20.symbol,
    erc20.totalSupply,
    erc20.transfer,
    erc20.transferFrom,
)


# @dev The most accounts one batch may touch, so a batch always fits in a block.
MAX_BATCH: public(constant(uint256)) = 256

# @dev Batch ids that already executed.
batch_executed: public(HashMap[bytes32, bool])

# @dev Accounts the minters' batches may not debit (the treasury).
protected: public(HashMap[address, bool])


event BatchExecuted:
    batch_id: indexed(bytes32)
    kind: uint8
    size: uint256


event ProtectionChanged:
    account: indexed(address)
    protected: bool


KIND_MINT: constant(uint8) = 1
KIND_BURN: constant(uint8) = 2
KIND_TRANSFER: constant(uint8) = 3


@deploy
@payable
def __init__(name_: String[25], symbol_: String[5]):
    ow.__init__()
    erc20.__init__(name_, symbol_, 18, "MorNet", "1")


@external
def transfer_ownership(new_owner: address):
    """
    @dev Hands the contract to `new_owner` (the treasury's Safe), which becomes a minter too.
         Unlike snekmate's version, the previous owner keeps its minter role: the operator
         goes on running the routine batches, and the new owner can revoke it by proposal.
    """
    ow._check_owner()
    assert new_owner != empty(address), "mornet: new owner is the zero address"
    ow._transfer_ownership(new_owner)
    erc20.is_minter[new_owner] = True
    log erc20.RoleMinterChanged(minter=new_owner, status=True)


@external
def set_protected(account: address, protected_: bool):
    """
    @dev Owner only: whether the minters' batches may debit `account`.
    """
    ow._check_owner()
    self.protected[account] = protected_
    log ProtectionChanged(account=account, protected=protected_)


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
        assert not self.protected[accounts[i]], "mornet: the account is protected"
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
        assert not self.protected[senders[i]], "mornet: the account is protected"
        erc20._transfer(senders[i], receivers[i], amounts[i])
