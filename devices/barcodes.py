"""Barcodes as devices and labels carry them: GS1 check digits and scale labels.

The one place that builds codes to scan, for the simulators, the demo catalog and the tests.
"""

from __future__ import annotations

from biip.checksums import gs1_standard_check_digit


def with_check_digit(payload: str) -> str:
    """``payload`` followed by its GS1 check digit: an EAN-13 from 12 digits, a UPC-A from 11."""
    return payload + str(gs1_standard_check_digit(payload))


def make_weighed_code(
    plu: str,
    price_minor: int,
    prefix: str = "2",
    plu_length: int = 6,
    value_length: int = 5,
) -> str:
    """Build a price-embedded EAN-13 as a store scale prints it: prefix, PLU, price, check digit.

    The store default is ``2`` + 6-digit PLU + 5-digit price in minor units + GS1 check digit,
    e.g. PLU ``100023`` at 12.34 -> ``2100023012347``-style codes. Raises ``ValueError`` when a
    part does not fit, because a silently truncated price would charge the wrong amount.
    """
    if not prefix.isdigit():
        raise ValueError(f"prefix must be digits, got {prefix!r}")
    if not plu.isdigit() or len(plu) > plu_length:
        raise ValueError(f"PLU must be at most {plu_length} digits, got {plu!r}")
    if isinstance(price_minor, bool) or not isinstance(price_minor, int):
        raise TypeError("price_minor must be an int of minor units")
    if not 0 <= price_minor < 10**value_length:
        raise ValueError(f"price {price_minor} does not fit in {value_length} digits")
    payload = f"{prefix}{plu.zfill(plu_length)}{price_minor:0{value_length}d}"
    if len(payload) != 12:
        raise ValueError(f"layout gives {len(payload) + 1} digits, an EAN-13 needs 13")
    return with_check_digit(payload)
