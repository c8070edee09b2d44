"""Ingest of the stores' events: exactly once, in each store's sequence order."""
