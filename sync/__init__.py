"""The contract the edge and the cloud share: money, ids, event envelopes.

This package imports neither ``edge`` nor ``cloud``.
"""
