"""The kernel both sides run on: money, ids, clocks, free text, untrusted input, settings,
HTTP error shapes, fault points and the catalog file format.

This package imports none of ``edge``, ``cloud``, ``sync``, ``devices`` or ``aisle``; the
store-to-cloud protocol itself lives in ``sync``.
"""
