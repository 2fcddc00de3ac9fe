"""Chain: the token contracts, the node, and the exactly-once outbox of on-chain operations."""
