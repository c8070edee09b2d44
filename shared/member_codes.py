"""Member codes: what a member's phone shows as a QR and a cashier may type. 17 random digits
and a Luhn check digit, made by whoever signs the member up (the cloud, or a store offline),
unique without coordination in practice and refused by a unique index if ever not."""

from __future__ import annotations

import secrets

CODE_DIGITS = 18


def luhn_digit(digits: str) -> str:
    """The Luhn check digit of ``digits``."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def new_member_code() -> str:
    body = "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS - 1))
    return body + luhn_digit(body)


def is_member_code(text: str) -> bool:
    """Whether ``text`` is a well-formed member code (its check digit right)."""
    return (
        len(text) == CODE_DIGITS
        and text.isascii()
        and text.isdigit()
        and luhn_digit(text[:-1]) == text[-1]
    )
