"""Token engine: minting and burning on request (idempotent), and the GCM index."""
