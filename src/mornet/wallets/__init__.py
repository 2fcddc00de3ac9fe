"""Wallets: a custodial EOA per user, keys encrypted at rest, balances, history, transfers."""
