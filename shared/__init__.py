"""The kernel both sides run on: money, ids, clocks, free text, untrusted input, settings,
SQLite and database setup, migrations, CLI plumbing, HTTP errors and request bodies, the
OpenAPI writer, fault points, and the catalog (its file format, its columns and its write rule).

This package imports none of ``edge``, ``cloud``, ``sync``, ``devices`` or ``aisle``; the
store-to-cloud protocol itself lives in ``sync``.
"""
