"""The store-to-cloud protocol: wire events and feed items, batches, cursors, signatures, keys.

This package imports neither ``edge`` nor ``cloud``; what both sides share that is not the
protocol (money, ids, clocks, settings) lives in ``shared``.
"""
