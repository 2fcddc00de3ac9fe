"""Market: prepaid units bought from the platform at the tariff, sold back, and traded between
households on an order book per region and resource."""
