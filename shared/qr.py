"""QR codes as inline SVG, for pages and answers that show one (exit passes, coupons, a
campaign's claim poster)."""

from __future__ import annotations

import segno


def qr_svg(text: str, *, scale: int) -> str:
    """``text`` as an inline SVG QR code (error correction at least M), ready to embed in HTML:
    no XML declaration or namespace, as HTML5 wants for inline SVG."""
    return str(segno.make(text, error="m", micro=False).svg_inline(scale=scale))
