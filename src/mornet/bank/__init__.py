"""Bank gateway: roubles in and out through T-Bank's acquiring protocol (in progress)."""
