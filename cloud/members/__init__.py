"""The chain's members and their points: the registry, sealed personal data, the points
ledger."""
