"""Households: a user's homes, their region, and the edge agents that report for them."""
