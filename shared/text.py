"""Free text from outside (reasons, names, notes): what may be stored and sent on.

A NUL cuts a C string short in a printer driver or a log line; bidirectional controls (U+202E
and friends) make ``abc.exe`` read as ``exe.cba`` on a screen, and other control characters
play tricks on terminals and receipts. Free text with any of them is refused, with the field
named, rather than stored and pushed to every store and to HQ. Tabs and newlines are refused
too: none of the fields that use this is multi-line.
"""

from __future__ import annotations

import unicodedata

#: Unicode's bidirectional formatting characters (embeddings, overrides, isolates, marks).
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


#: The same rule as a JSON Schema / pydantic pattern, for request schemas: no C0 or C1 control
#: character and no bidirectional control. (Lone surrogates never get as far: a JSON decoder
#: that meets one refuses the string.)
FREE_TEXT_PATTERN = (
    "^[^\\x00-\\x1f\\x7f-\\x9f\\u061c\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069]*$"
)


def unsafe_character(value: str) -> str | None:
    """The first character of ``value`` that free text may not hold, or ``None``."""
    for char in value:
        if char in BIDI_CONTROLS:
            return char
        category = unicodedata.category(char)
        # Cc: C0 and C1 controls (NUL included); Cs: lone surrogates, which no encoder can write.
        if category in ("Cc", "Cs"):
            return char
    return None


def check_free_text(value: str, field: str) -> str:
    """``value`` unchanged, or ``ValueError`` naming ``field`` and the offending character."""
    bad = unsafe_character(value)
    if bad is not None:
        raise ValueError(
            f"{field} contains the control character U+{ord(bad):04X}, which is not allowed"
        )
    return value
