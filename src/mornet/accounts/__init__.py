"""Accounts: the life of a user across contexts — opening one (the identity and its wallet in
one transaction) and blocking one (refused everywhere, queued transfers cancelled). It sits
above identity, wallets and chain, so none of them calls up into another."""
