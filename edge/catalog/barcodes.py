"""Turn a scanned string into a catalog lookup key, or a store variable-measure item.

Pure functions, no I/O: this runs on every scan. Three shapes are understood:

* a GTIN (EAN-13, UPC-A, EAN-8, GTIN-14), returned as its 14-digit form, the one key the
  ``barcodes`` table is indexed by;
* a store variable-measure code (restricted circulation prefix ``2`` by default) carrying a PLU
  and an embedded price or weight, decoded with the store's :class:`VariableMeasureLayout`;
* a GS1 element string (GS1-128 / DataBar / GS1 DataMatrix content, bracketed or FNC1-less)
  with AI (01), optionally with a net weight in kg (AI 310n) and an amount payable (AI 392n).

A scanner set to send AIM symbology identifiers prefixes what it read with one (``]C1`` for
GS1-128, ``]d2`` for GS1 DataMatrix, ``]e0`` for DataBar, ``]Q3`` for a GS1 QR code, ``]E0`` for
EAN-13, ...): the prefix is read with biip and says whether the rest is a GS1 element string.

Anything else raises :class:`~edge.errors.InvalidBarcode`, whose ``details["reason"]`` is one of
``empty``, ``not_digits``, ``length``, ``check_digit``, ``value_check_digit``, ``gs1_syntax``,
``gs1_no_gtin``, ``gs1_precision`` or ``symbology``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from biip import ParseConfig, ParseError
from biip.checksums import gs1_price_weight_check_digit, gs1_standard_check_digit
from biip.gs1_messages import GS1Message
from biip.gtin import Gtin
from biip.symbology import GS1Symbology, SymbologyIdentifier

from edge.errors import InvalidBarcode

__all__ = [
    "CodeKind",
    "MeasureKind",
    "ScannedCode",
    "VariableMeasureLayout",
    "normalize_gtin",
    "parse_barcode",
]

MeasureKind = Literal["price", "weight"]
CodeKind = Literal["gtin", "variable_measure"]

_GTIN_LENGTHS = frozenset((8, 12, 13, 14))
#: Symbologies whose content is a GS1 element string (AIs), not a bare GTIN.
_ELEMENT_STRING_SYMBOLOGIES = frozenset(
    {
        GS1Symbology.GS1_128,
        GS1Symbology.GS1_DATABAR,
        GS1Symbology.GS1_COMPOSITE_WITH_SEPARATOR_CHAR,
        GS1Symbology.GS1_COMPOSITE_WITH_ESCAPE_CHAR,
        GS1Symbology.GS1_DATAMATRIX,
        GS1Symbology.GS1_QR_CODE,
        GS1Symbology.GS1_DOTCODE,
    }
)

# Built once: biip otherwise builds a fresh config per call. Dates are not checked because an
# all-zero or odd date in some unrelated AI (best-before, packed-on) must not block a sale; the
# checkout only needs the GTIN, the weight and the price.
_PARSE_CONFIG = ParseConfig(gs1_element_strings_verify_date=False)


@dataclass(frozen=True, slots=True)
class VariableMeasureLayout:
    """The store's layout for in-store (restricted circulation) variable-measure codes.

    Reading left to right: prefix, PLU, optional price/weight check digit, value, GS1 check
    digit. The layout is validated once here so that parsing a scan needs no checks of its own.
    """

    prefix: str = "2"
    plu_length: int = 6
    kind: MeasureKind = "price"
    value_length: int = 5
    # Price in major currency units (2 -> the value is in minor units of a 2-decimal currency);
    # weight in kg (3 -> the value is in grams).
    decimals: int = 2
    # German style: a GS1 price/weight check digit between the PLU and the value.
    value_check_digit: bool = False

    def __post_init__(self) -> None:
        if not (self.prefix.isascii() and self.prefix.isdigit()):
            raise ValueError(f"prefix must be one or more digits, got {self.prefix!r}")
        if self.plu_length < 1:
            raise ValueError(f"plu_length must be positive, got {self.plu_length}")
        if self.value_length < 1:
            raise ValueError(f"value_length must be positive, got {self.value_length}")
        if self.kind not in ("price", "weight"):
            raise ValueError(f"kind must be 'price' or 'weight', got {self.kind!r}")
        if not 0 <= self.decimals <= 3:
            raise ValueError(f"decimals must be within 0..3, got {self.decimals}")
        # GS1 defines the price/weight check digit for 4- and 5-digit values only.
        if self.value_check_digit and self.value_length not in (4, 5):
            raise ValueError(
                f"value_length must be 4 or 5 with value_check_digit, got {self.value_length}"
            )
        if self.length not in (12, 13):
            raise ValueError(
                "prefix, plu_length, value_check_digit and value_length must add up to a "
                f"12- or 13-digit code with its check digit, got {self.length} digits"
            )

    @property
    def length(self) -> int:
        """Total digits of a variable-measure code in this layout, final check digit included."""
        return (
            len(self.prefix)
            + self.plu_length
            + (1 if self.value_check_digit else 0)
            + self.value_length
            + 1
        )


@dataclass(frozen=True, slots=True)
class ScannedCode:
    """What a scan means: a GTIN to look up, or a PLU with its embedded price or weight."""

    raw: str  # what was scanned, stripped of surrounding whitespace
    kind: CodeKind
    gtin: str | None  # 14 digits, the lookup key; also set for GS1 element strings
    plu: str | None  # variable-measure PLU as printed, leading zeros kept
    price: int | None  # embedded price in minor units
    weight_g: int | None  # embedded weight in grams


def _invalid(raw: str, reason: str, message: str, **extra: object) -> InvalidBarcode:
    return InvalidBarcode(message, details={"barcode": raw, "reason": reason, **extra})


def _check_digit_error(raw: str, code: str) -> InvalidBarcode:
    # Leading zeros weigh nothing in the mod-10 sum, so the expected digit of the code as
    # scanned is the expected digit of any zero-padded form of it.
    expected = gs1_standard_check_digit(code[:-1])
    return _invalid(
        raw,
        "check_digit",
        f"Barcode {raw!r} has a wrong check digit: expected {expected}, got {code[-1]}.",
        expected_check_digit=expected,
    )


def _is_ascii_digits(value: str) -> bool:
    # str.isdigit() alone accepts Arabic-Indic, full-width and superscript digits, which biip
    # would then happily store in the key.
    return value.isascii() and value.isdigit()


def normalize_gtin(code: str) -> str:
    """Validate a GTIN-8/12/13/14 (digits, length, check digit) and return its 14-digit form.

    The 14-digit form is the single catalog key, so a UPC-A and its EAN-13 spelling with a
    leading zero find the same product. Raises InvalidBarcode when the code is not a GTIN.
    """
    raw = code.strip()
    if not raw:
        raise _invalid(raw, "empty", "Barcode is empty.")
    if not _is_ascii_digits(raw):
        raise _invalid(raw, "not_digits", f"Barcode {raw!r} must contain digits only.")
    if len(raw) not in _GTIN_LENGTHS:
        raise _invalid(
            raw,
            "length",
            f"Barcode {raw!r} has {len(raw)} digits; a GTIN has 8, 12, 13 or 14.",
            length=len(raw),
        )
    try:
        gtin = Gtin.parse(raw, config=_PARSE_CONFIG)
    except ParseError:
        # Digits and length are checked above, so the check digit is all biip can refuse.
        raise _check_digit_error(raw, raw) from None
    return gtin.as_gtin_14()


def parse_barcode(
    code: str, layout: VariableMeasureLayout, *, minor_exponent: int = 2
) -> ScannedCode:
    """Classify and decode one scan using the store's variable-measure layout.

    ``minor_exponent`` is the store currency's number of decimals, used to turn embedded prices
    into minor units. Raises InvalidBarcode for a bad scan and ValueError for a layout that
    cannot express a price in this currency (a configuration error, not a bad scan).
    """
    # Checked on every call, not only for variable-measure scans, so that a misconfigured store
    # fails on its first scan rather than on the first weighed item.
    if minor_exponent < 0:
        raise ValueError(f"minor_exponent must not be negative, got {minor_exponent}")
    if layout.kind == "price" and layout.decimals > minor_exponent:
        raise ValueError(
            f"a price layout with {layout.decimals} decimals cannot be expressed in minor units "
            f"of a currency with {minor_exponent} decimals"
        )

    raw = code.strip()
    if not raw:
        raise _invalid(raw, "empty", "Barcode is empty.")
    if raw[0] == "]":
        return _parse_with_symbology(raw, layout, minor_exponent)
    # A GTIN is at most 14 digits, so anything longer starting with AI (01) is a GS1 element
    # string; so is the bracketed human-readable form.
    if raw[0] == "(" or (len(raw) > 14 and raw.startswith("01")):
        return _parse_gs1(raw, minor_exponent)
    if not _is_ascii_digits(raw):
        raise _invalid(raw, "not_digits", f"Barcode {raw!r} must contain digits only.")

    length = layout.length
    if len(raw) == length and raw.startswith(layout.prefix):
        return _parse_variable_measure(raw, raw, layout, minor_exponent)
    # Scanners set to report UPC-A as EAN-13 prepend a zero to 12-digit store codes.
    if length == 12 and len(raw) == 13 and raw[0] == "0" and raw.startswith(layout.prefix, 1):
        return _parse_variable_measure(raw, raw[1:], layout, minor_exponent)

    return ScannedCode(raw, "gtin", normalize_gtin(raw), None, None, None)


def _parse_with_symbology(
    raw: str, layout: VariableMeasureLayout, minor_exponent: int
) -> ScannedCode:
    """A code behind an AIM symbology identifier: GS1 element string or plain code by its kind."""
    try:
        symbology = SymbologyIdentifier.extract(raw) if raw.isascii() and len(raw) > 3 else None
    except (ParseError, IndexError, ValueError):
        symbology = None
    if symbology is None or len(raw) <= len(symbology.value):
        raise _invalid(
            raw, "symbology", f"Barcode {raw!r} starts with an unknown symbology identifier."
        )
    content = raw[len(symbology.value) :]
    if content.startswith("]"):
        raise _invalid(raw, "symbology", f"Barcode {raw!r} has two symbology identifiers.")
    if symbology.gs1_symbology in _ELEMENT_STRING_SYMBOLOGIES:
        scanned = _parse_gs1(content, minor_exponent, raw=raw)
    else:
        scanned = parse_barcode(content, layout, minor_exponent=minor_exponent)
    return replace(scanned, raw=raw)


def _parse_variable_measure(
    raw: str, digits: str, layout: VariableMeasureLayout, minor_exponent: int
) -> ScannedCode:
    if gs1_standard_check_digit(digits[:-1]) != int(digits[-1]):
        raise _check_digit_error(raw, digits)

    plu_start = len(layout.prefix)
    plu_end = plu_start + layout.plu_length
    value_start = plu_end + 1 if layout.value_check_digit else plu_end
    value = digits[value_start : value_start + layout.value_length]

    if layout.value_check_digit:
        # The final check digit cannot catch a misprinted price that was itself used to
        # compute it; this one guards the value alone.
        expected = gs1_price_weight_check_digit(value)
        if expected != int(digits[plu_end]):
            raise _invalid(
                raw,
                "value_check_digit",
                f"Barcode {raw!r} has a wrong price/weight check digit: expected {expected}, "
                f"got {digits[plu_end]}.",
                expected_check_digit=expected,
            )

    amount = int(value)
    plu = digits[plu_start:plu_end]
    if layout.kind == "price":
        # decimals <= minor_exponent is checked by the caller, so the exponent is never negative.
        price = amount * 10 ** (minor_exponent - layout.decimals)
        return ScannedCode(raw, "variable_measure", None, plu, price, None)
    weight_g = amount * 10 ** (3 - layout.decimals)
    return ScannedCode(raw, "variable_measure", None, plu, None, weight_g)


def _scale_exact(raw: str, value: str, decimals: int, target_decimals: int) -> int:
    """Rescale a decimal-coded integer to ``target_decimals``, refusing to drop digits."""
    amount = int(value)
    if decimals <= target_decimals:
        return amount * 10 ** (target_decimals - decimals)
    whole, rest = divmod(amount, 10 ** (decimals - target_decimals))
    if rest:
        # Rounding would silently change what the customer is charged for.
        raise _invalid(
            raw,
            "gs1_precision",
            f"Barcode {raw!r} carries {value} with {decimals} decimals, finer than the "
            f"{target_decimals} the store can represent.",
        )
    return whole


def _parse_gs1(content: str, minor_exponent: int, *, raw: str | None = None) -> ScannedCode:
    """Read a GS1 element string; ``raw`` is what was scanned, when it had a symbology prefix."""
    raw = content if raw is None else raw
    # biip's AI patterns use \d, which also matches non-ASCII digits.
    if not content.isascii():
        raise _invalid(raw, "gs1_syntax", f"Barcode {raw!r} contains non-ASCII characters.")
    try:
        if content[0] == "(":
            message = GS1Message.parse_hri(content, config=_PARSE_CONFIG)
        else:
            message = GS1Message.parse(content, config=_PARSE_CONFIG)
    except ParseError as exc:
        raise _invalid(
            raw, "gs1_syntax", f"Barcode {raw!r} is not a valid GS1 element string.", error=str(exc)
        ) from None

    elements = message.element_strings
    gtin_element = elements.get(ai="01")
    if gtin_element is None:
        raise _invalid(raw, "gs1_no_gtin", f"Barcode {raw!r} carries no GTIN (AI 01).")
    if gtin_element.gtin is None:
        # AI 01's pattern guarantees 14 digits, so a missing GTIN means a bad check digit.
        raise _check_digit_error(raw, gtin_element.value)

    weight_g: int | None = None
    weight_element = elements.get(ai="310")  # net weight in kg, 4th AI digit = decimals
    if weight_element is not None:
        weight_g = _scale_exact(raw, weight_element.value, int(weight_element.ai.ai[3]), 3)

    price: int | None = None
    price_element = elements.get(ai="392")  # amount payable in local currency, 4th = decimals
    if price_element is not None:
        price = _scale_exact(raw, price_element.value, int(price_element.ai.ai[3]), minor_exponent)

    return ScannedCode(raw, "gtin", gtin_element.gtin.as_gtin_14(), None, price, weight_g)
