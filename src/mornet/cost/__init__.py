"""The cost engine: consumption priced at the tariff in force (rating)."""
