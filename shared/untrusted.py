"""Reading what comes from outside: JSON documents and whole numbers in headers and queries.

``json.loads`` answers a document nested 100,000 deep with ``RecursionError`` (the C decoder
recurses), which is not a ``ValueError`` and would escape as a server error; ``str.isdigit``
accepts ``²`` and Arabic-Indic digits, which ``int`` then refuses with an exception nobody
expected. Both sides of the wire read untrusted input through these two functions instead.
"""

from __future__ import annotations

import json
from typing import Any


class UntrustedInputError(ValueError):
    """The input is not what it must be; the message says why, for the error's details."""


def loads_json(raw: bytes | str) -> Any:
    """Decode a JSON document; :class:`UntrustedInputError` for bad JSON, bad UTF-8 or a
    document nested too deeply to decode."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise UntrustedInputError("JSON nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise UntrustedInputError(str(exc)) from None


def whole_number(text: str | None) -> int | None:
    """``text`` as a non-negative integer when it is ASCII digits only (at most 18), else None."""
    if text is None:
        return None
    text = text.strip()
    if not text or len(text) > 18 or not (text.isascii() and text.isdigit()):
        return None
    return int(text)
