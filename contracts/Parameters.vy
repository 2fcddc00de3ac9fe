# pragma version ~=0.4.3
"""
@title MorNet governed parameters
@license GPL-3.0-or-later
@notice The economic model's governed numbers (gcm_rate, market_spread, …), each an 18-decimal
        fixed-point value under a 32-byte name. Owned by the DAO treasury's Safe: a value
        changes only through an executed proposal, and anyone can read it.
"""

from snekmate.auth import ownable as ow
initializes: ow

exports: (ow.owner, ow.transfer_ownership)


# @dev name (ASCII, right-padded with zero bytes) → value × 10**18.
values: public(HashMap[bytes32, uint256])


event ParameterChanged:
    name: indexed(bytes32)
    value: uint256


@deploy
@payable
def __init__():
    ow.__init__()


@external
def set_value(name: bytes32, new_value: uint256):
    """
    @dev Owner only.
    """
    ow._check_owner()
    self.values[name] = new_value
    log ParameterChanged(name=name, value=new_value)
