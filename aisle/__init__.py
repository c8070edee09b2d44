"""The aisle command: one entry point for edge, cloud and demo."""
