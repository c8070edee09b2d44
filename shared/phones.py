"""Mobile numbers, the member's identity: parsed and normalised with ``phonenumbers`` (Google's
libphonenumber metadata) to E.164, and masked for any screen (``138****8000``).

A number typed without a country code is read in the chain's default region (a setting). Only
numbers that can be a mobile's are accepted: a member is reached on the phone they signed up
with.
"""

from __future__ import annotations

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

#: What a typed number may be before it is parsed: digits, spaces, ``+``, ``-``, brackets.
MAX_TYPED = 32
_MOBILE = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)


class InvalidPhone(ValueError):
    """Not a mobile number in the region given."""


def normalise_phone(typed: str, *, region: str) -> str:
    """``typed`` as E.164 (``+8613800138000``), read in ``region`` when it has no ``+``."""
    text = typed.strip()
    if not text or len(text) > MAX_TYPED or not all(c.isdigit() or c in "+-() " for c in text):
        raise InvalidPhone("a phone number is digits, with an optional + and country code")
    if not text.isascii():
        raise InvalidPhone("a phone number is ASCII digits")
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        raise InvalidPhone(f"not a phone number: {exc}") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone("not a valid phone number")
    if phonenumbers.number_type(number) not in _MOBILE:
        raise InvalidPhone("not a mobile number")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def _national(e164: str) -> str:
    """The national number of an E.164 number (``+8613800138000`` -> ``13800138000``), as
    ``phonenumbers.parse(e164).national_number`` reads it, without a parse: the country code is
    the one prefix of one to three digits that is a country's (calling codes are prefix-free)."""
    digits = e164.lstrip("+")
    for length in (1, 2, 3):
        if int(digits[:length]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            return str(int(digits[length:]))
    return str(phonenumbers.parse(e164, None).national_number)


def mask_phone(e164: str) -> str:
    """The national number with all but its first three and last four digits hidden, as a
    screen or a receipt shows it: ``+8613800138000`` -> ``138****8000``. ``e164`` is a number
    :func:`normalise_phone` gave (a member's lookup masks one at every checkout)."""
    national = _national(e164)
    if len(national) <= 7:
        return national[:1] + "*" * (len(national) - 3) + national[-2:]
    return national[:3] + "*" * (len(national) - 7) + national[-4:]
