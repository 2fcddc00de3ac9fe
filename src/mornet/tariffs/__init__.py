"""Tariffs (the oracle): regions and effective-dated prices per resource."""
