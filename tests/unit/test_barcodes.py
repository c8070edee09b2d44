"""Barcode parsing: GTIN normalisation, store variable-measure codes and GS1 element strings."""

from __future__ import annotations

import pytest
from biip.checksums import gs1_price_weight_check_digit, gs1_standard_check_digit
from hypothesis import given
from hypothesis import strategies as st

from edge.catalog.barcodes import (
    ScannedCode,
    VariableMeasureLayout,
    normalize_gtin,
    parse_barcode,
)
from edge.errors import InvalidBarcode

DEFAULT = VariableMeasureLayout()
# Kind weight, value in grams: "2" + PLU(6) + weight(5) + check.
WEIGHT = VariableMeasureLayout(kind="weight", decimals=3)
# German style, 13 digits: "28" + PLU(4) + price check digit + price(5) + check.
GERMAN = VariableMeasureLayout(prefix="28", plu_length=4, value_check_digit=True)
# UPC-A type 2 style, 12 digits: "2" + PLU(5) + price check digit + price(4) + check.
UPC_PRICE = VariableMeasureLayout(plu_length=5, value_length=4, value_check_digit=True)

digit_strings = st.text(alphabet="0123456789", min_size=12, max_size=12)


def mod10(payload: str) -> int:
    """Independent GS1 mod-10 check digit (weights 3,1,3,... from the right), as a test oracle."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(payload)))
    return -total % 10


def with_check(payload: str) -> str:
    return payload + str(mod10(payload))


def reason_of(excinfo: pytest.ExceptionInfo[InvalidBarcode]) -> str:
    return excinfo.value.details["reason"]


# --- GS1 General Specifications worked examples ----------------------------------------------


def test_gs1_standard_check_digit_vectors_match_oracle_and_biip() -> None:
    # GS1 General Specifications 7.9.1: GTIN-13 and GTIN-8 examples.
    assert mod10("950110153100") == gs1_standard_check_digit("950110153100") == 0
    assert mod10("9501234") == gs1_standard_check_digit("9501234") == 6


def test_gs1_price_weight_check_digit_vectors() -> None:
    # GS1 General Specifications 7.9.3 (4 digits) and 7.9.4 (5 digits).
    assert gs1_price_weight_check_digit("2875") == 9
    assert gs1_price_weight_check_digit("14685") == 6


def test_gs1_example_ean13_and_ean8_normalise() -> None:
    assert normalize_gtin("9501101531000") == "09501101531000"
    assert normalize_gtin("95012346") == "00000095012346"


# --- GTINs ------------------------------------------------------------------------------------


def test_upc_a_and_its_ean13_spelling_share_a_key() -> None:
    assert normalize_gtin("036000291452") == "00036000291452"
    assert normalize_gtin("0036000291452") == "00036000291452"
    upc = parse_barcode("036000291452", DEFAULT)
    ean = parse_barcode("0036000291452", DEFAULT)
    assert upc.gtin == ean.gtin == "00036000291452"
    assert upc.raw == "036000291452"
    assert ean.raw == "0036000291452"


def test_gtin14_case_code_keeps_its_indicator_digit() -> None:
    case = with_check("1950110153100")
    assert case == "19501101531007"
    assert normalize_gtin(case) == "19501101531007"
    # A case of the item is a different key from the item itself.
    assert normalize_gtin(case) != normalize_gtin("9501101531000")


def test_parse_gtin_returns_gtin_kind_with_nothing_else() -> None:
    assert parse_barcode("  9501101531000\n", DEFAULT) == ScannedCode(
        raw="9501101531000",
        kind="gtin",
        gtin="09501101531000",
        plu=None,
        price=None,
        weight_g=None,
    )


def test_bad_check_digit_raises_with_expected_digit() -> None:
    with pytest.raises(InvalidBarcode) as excinfo:
        parse_barcode("9501101531001", DEFAULT)
    err = excinfo.value
    assert err.code == "invalid_barcode"
    assert err.status == 422
    assert err.details == {
        "barcode": "9501101531001",
        "reason": "check_digit",
        "expected_check_digit": 0,
    }
    assert "expected 0" in err.message


def test_bad_check_digit_on_ean8_and_gtin14() -> None:
    with pytest.raises(InvalidBarcode) as excinfo:
        normalize_gtin("95012345")
    assert excinfo.value.details["expected_check_digit"] == 6
    with pytest.raises(InvalidBarcode) as excinfo:
        normalize_gtin("19501101531000")
    assert excinfo.value.details["expected_check_digit"] == 7


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("", "empty"),
        ("   \t", "empty"),
        ("95O1101531000", "not_digits"),  # letter O, not zero
        ("950 1101531000", "not_digits"),
        ("-9501101531000", "not_digits"),
        ("\u0669\u0665\u0660\u0661\u0662\u0663\u0664\u0666", "not_digits"),  # Arabic-Indic
        ("\uff19\uff15\uff10\uff11\uff12\uff13\uff14\uff16", "not_digits"),  # full-width
        ("1234567", "length"),
        ("9501101531", "length"),
        ("950110153100", "check_digit"),  # 12 digits: a UPC-A with a wrong check digit
    ],
)
def test_malformed_codes_raise(code: str, reason: str) -> None:
    for parse in (normalize_gtin, lambda c: parse_barcode(c, DEFAULT)):
        with pytest.raises(InvalidBarcode) as excinfo:
            parse(code)
        assert excinfo.value.code == "invalid_barcode"
        assert reason_of(excinfo) == reason
        assert excinfo.value.details["barcode"] == code.strip()


def test_over_long_digit_string_is_a_length_error() -> None:
    # 15 digits not starting with AI 01 is neither a GTIN nor a GS1 element string.
    with pytest.raises(InvalidBarcode) as excinfo:
        parse_barcode("950110153100012", DEFAULT)
    assert reason_of(excinfo) == "length"
    assert excinfo.value.details["length"] == 15


@given(digit_strings)
def test_any_payload_with_its_check_digit_parses_and_no_other_digit_does(payload: str) -> None:
    check = gs1_standard_check_digit(payload)
    assert check == mod10(payload)
    good = payload + str(check)
    assert normalize_gtin(good) == "0" + good
    scanned = parse_barcode(good, DEFAULT)
    if good.startswith("2"):
        assert scanned.kind == "variable_measure"
        assert scanned.plu == good[1:7]
        assert scanned.price == int(good[7:12])
    else:
        assert scanned.kind == "gtin"
        assert scanned.gtin == "0" + good
    for wrong in "0123456789".replace(str(check), ""):
        bad = payload + wrong
        with pytest.raises(InvalidBarcode) as excinfo:
            parse_barcode(bad, DEFAULT)
        assert excinfo.value.details == {
            "barcode": bad,
            "reason": "check_digit",
            "expected_check_digit": check,
        }
        with pytest.raises(InvalidBarcode):
            normalize_gtin(bad)


# --- Variable-measure layouts ------------------------------------------------------------------


def test_layout_lengths() -> None:
    assert DEFAULT.length == 13
    assert WEIGHT.length == 13
    assert GERMAN.length == 13
    assert UPC_PRICE.length == 12


def test_default_layout_extracts_price_in_minor_units() -> None:
    # Payload 2 012345 01234; weights 3,1,... from the right:
    # 4*3 + 3 + 2*3 + 1 + 0*3 + 5 + 4*3 + 3 + 2*3 + 1 + 0*3 + 2 = 51 -> check (10 - 1) = 9.
    assert gs1_standard_check_digit("201234501234") == 9
    assert parse_barcode("2012345012349", DEFAULT) == ScannedCode(
        raw="2012345012349",
        kind="variable_measure",
        gtin=None,
        plu="012345",
        price=1234,
        weight_g=None,
    )


def test_price_is_scaled_to_the_currency_exponent() -> None:
    # A layout with whole-unit prices in a 2-decimal currency: 1234 units = 123400 minor units.
    whole_units = VariableMeasureLayout(decimals=0)
    assert parse_barcode("2012345012349", whole_units).price == 123400
    # A 3-decimal currency (e.g. KWD) gets one more zero.
    assert parse_barcode("2012345012349", DEFAULT, minor_exponent=3).price == 12340
    # A 0-decimal currency with a 0-decimal layout takes the value as is.
    assert parse_barcode("2012345012349", whole_units, minor_exponent=0).price == 1234


def test_price_layout_finer_than_the_currency_is_refused_at_parse_time() -> None:
    with pytest.raises(ValueError, match="decimals"):
        parse_barcode("9501101531000", DEFAULT, minor_exponent=0)
    with pytest.raises(ValueError, match="minor_exponent"):
        parse_barcode("9501101531000", DEFAULT, minor_exponent=-1)
    # Weight layouts do not depend on the currency.
    assert parse_barcode("2012345012509", WEIGHT, minor_exponent=0).weight_g == 1250


def test_weight_layout_gives_grams() -> None:
    # Payload 2 012345 01250: 0*3 + 5 + 2*3 + 1 + 0 + 5 + 4*3 + 3 + 2*3 + 1 + 0 + 2 = 41 -> 9.
    assert gs1_standard_check_digit("201234501250") == 9
    scanned = parse_barcode("2012345012509", WEIGHT)
    assert scanned.kind == "variable_measure"
    assert scanned.plu == "012345"
    assert scanned.weight_g == 1250
    assert scanned.price is None
    # Two decimals of a kg are tens of grams.
    assert parse_barcode("2012345012509", VariableMeasureLayout(kind="weight")).weight_g == 12500


def test_plu_keeps_leading_zeros() -> None:
    code = with_check("2000042" + "00150")
    scanned = parse_barcode(code, DEFAULT)
    assert scanned.plu == "000042"
    assert scanned.price == 150


def test_variable_measure_bad_check_digit() -> None:
    with pytest.raises(InvalidBarcode) as excinfo:
        parse_barcode("2012345012340", DEFAULT)
    assert reason_of(excinfo) == "check_digit"
    assert excinfo.value.details["expected_check_digit"] == 9


def test_code_of_another_length_or_prefix_is_a_gtin() -> None:
    # Same length, different prefix: a normal EAN-13.
    assert parse_barcode("9501101531000", DEFAULT).kind == "gtin"
    # Prefix 2 but the layout is 13 digits: a 12-digit UPC-A starting with 2 is a plain GTIN.
    upc = with_check("20123450123")
    assert parse_barcode(upc, DEFAULT) == ScannedCode(upc, "gtin", "00" + upc, None, None, None)


def test_german_layout_with_5_digit_price_check_digit() -> None:
    # GS1 vector: price 14685 -> price check digit 6. Payload 28 1234 6 14685:
    # 5*3 + 8 + 6*3 + 4 + 1*3 + 6 + 4*3 + 3 + 2*3 + 1 + 8*3 + 2 = 102 -> check 8.
    assert gs1_standard_check_digit("281234614685") == 8
    scanned = parse_barcode("2812346146858", GERMAN)
    assert scanned.kind == "variable_measure"
    assert scanned.plu == "1234"
    assert scanned.price == 14685


def test_german_layout_refuses_wrong_price_check_digit() -> None:
    # Right final check digit, wrong price check digit: only the value check can catch it.
    code = with_check("28" + "1234" + "1" + "14685")
    with pytest.raises(InvalidBarcode) as excinfo:
        parse_barcode(code, GERMAN)
    assert excinfo.value.details == {
        "barcode": code,
        "reason": "value_check_digit",
        "expected_check_digit": 6,
    }


def test_upc_layout_with_4_digit_price_check_digit() -> None:
    # GS1 vector: price 2875 -> price check digit 9. Payload 2 12345 9 2875:
    # 5*3 + 7 + 8*3 + 2 + 9*3 + 5 + 4*3 + 3 + 2*3 + 1 + 2*3 = 108 -> check 2.
    assert gs1_standard_check_digit("21234592875") == 2
    scanned = parse_barcode("212345928752", UPC_PRICE)
    assert (scanned.kind, scanned.plu, scanned.price) == ("variable_measure", "12345", 2875)
    wrong = with_check("2" + "12345" + "0" + "2875")
    with pytest.raises(InvalidBarcode) as excinfo:
        parse_barcode(wrong, UPC_PRICE)
    assert reason_of(excinfo) == "value_check_digit"
    assert excinfo.value.details["expected_check_digit"] == 9


def test_12_digit_layout_accepts_the_ean13_spelling() -> None:
    scanned = parse_barcode("0212345928752", UPC_PRICE)
    assert (scanned.kind, scanned.plu, scanned.price) == ("variable_measure", "12345", 2875)
    assert scanned.raw == "0212345928752"


@given(plu=st.integers(0, 9999), price=st.integers(0, 99999))
def test_german_layout_round_trips(plu: int, price: int) -> None:
    value = f"{price:05d}"
    code = with_check(f"28{plu:04d}{gs1_price_weight_check_digit(value)}{value}")
    scanned = parse_barcode(code, GERMAN)
    assert scanned.plu == f"{plu:04d}"
    assert scanned.price == price


@given(plu=st.integers(0, 999_999), grams=st.integers(0, 99_999))
def test_weight_layout_round_trips(plu: int, grams: int) -> None:
    scanned = parse_barcode(with_check(f"2{plu:06d}{grams:05d}"), WEIGHT)
    assert scanned.plu == f"{plu:06d}"
    assert scanned.weight_g == grams


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"prefix": ""}, "prefix"),
        ({"prefix": "2a"}, "prefix"),
        ({"prefix": "\uff12"}, "prefix"),  # full-width 2
        ({"plu_length": 0}, "plu_length"),
        ({"value_length": 0, "plu_length": 11}, "value_length"),
        ({"kind": "count"}, "kind"),
        ({"decimals": 4}, "decimals"),
        ({"decimals": -1}, "decimals"),
        ({"value_check_digit": True, "value_length": 3, "plu_length": 7}, "value_length"),
        ({"plu_length": 7}, "12- or 13-digit"),  # 14 digits
        ({"plu_length": 4}, "12- or 13-digit"),  # 11 digits
    ],
)
def test_layout_validation(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        VariableMeasureLayout(**kwargs)  # type: ignore[arg-type]


# --- GS1 element strings -----------------------------------------------------------------------


def test_gs1_hri_with_weight() -> None:
    assert parse_barcode("(01)09501101531000(3103)001250", DEFAULT) == ScannedCode(
        raw="(01)09501101531000(3103)001250",
        kind="gtin",
        gtin="09501101531000",
        plu=None,
        price=None,
        weight_g=1250,
    )


def test_gs1_fnc1_less_with_weight_and_price() -> None:
    scanned = parse_barcode("0109501101531000310200125039220599", DEFAULT)
    assert scanned.gtin == "09501101531000"
    assert scanned.weight_g == 12500  # AI 3102: 001250 with 2 decimals = 12.50 kg
    assert scanned.price == 599


def test_gs1_with_group_separator_and_other_ais() -> None:
    # Batch (10) is variable length, so a GS (FNC1) ends it; a later AI still counts.
    scanned = parse_barcode("0109501101531000" + "10ABC123\x1d" + "3922599", DEFAULT)
    assert scanned.gtin == "09501101531000"
    assert scanned.price == 599
    assert scanned.weight_g is None


def test_gs1_all_zero_date_in_another_ai_does_not_block_the_sale() -> None:
    # Some labels print (17) expiry as 000000; biip refuses that date unless told not to check.
    scanned = parse_barcode("0109501101531000" + "17000000" + "3103001250", DEFAULT)
    assert scanned.gtin == "09501101531000"
    assert scanned.weight_g == 1250


def test_gs1_price_is_scaled_to_the_currency() -> None:
    assert parse_barcode("(01)09501101531000(3920)5", DEFAULT).price == 500
    assert parse_barcode("(01)09501101531000(3922)599", DEFAULT, minor_exponent=3).price == 5990
    with pytest.raises(InvalidBarcode) as excinfo:
        parse_barcode("(01)09501101531000(3923)5995", DEFAULT)
    assert reason_of(excinfo) == "gs1_precision"
    # Trailing zeros beyond the currency's decimals are exact and accepted.
    assert parse_barcode("(01)09501101531000(3923)5990", DEFAULT).price == 599


def test_gs1_weight_finer_than_a_gram_is_refused() -> None:
    with pytest.raises(InvalidBarcode) as excinfo:
        parse_barcode("(01)09501101531000(3105)001255", DEFAULT)
    assert reason_of(excinfo) == "gs1_precision"
    assert parse_barcode("(01)09501101531000(3105)001200", DEFAULT).weight_g == 12


def test_gs1_bad_gtin_check_digit() -> None:
    with pytest.raises(InvalidBarcode) as excinfo:
        parse_barcode("(01)09501101531001(3103)001250", DEFAULT)
    assert reason_of(excinfo) == "check_digit"
    assert excinfo.value.details["expected_check_digit"] == 0


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("(10)ABC123", "gs1_no_gtin"),
        ("(01)0950110153100", "gs1_syntax"),  # 13 digits in a 14-digit AI
        ("(99999)1", "gs1_syntax"),
        ("010950110153100", "gs1_syntax"),  # 15 digits: AI 01 is one short
        ("(01)\u0660\u0669501101531000", "gs1_syntax"),  # non-ASCII digits
    ],
)
def test_gs1_malformed(code: str, reason: str) -> None:
    with pytest.raises(InvalidBarcode) as excinfo:
        parse_barcode(code, DEFAULT)
    assert reason_of(excinfo) == reason


# --- AIM symbology identifiers -------------------------------------------------------------------

GTIN14 = "09501101020917"


@pytest.mark.parametrize("prefix", ["]C1", "]e0", "]d2", "]Q3"])
def test_gs1_element_strings_behind_a_symbology_identifier_are_read(prefix: str) -> None:
    scanned = parse_barcode(f"{prefix}01{GTIN14}3103001500", DEFAULT)
    assert (scanned.gtin, scanned.weight_g, scanned.raw) == (
        GTIN14,
        1500,
        f"{prefix}01{GTIN14}3103001500",
    )


def test_a_datamatrix_with_fnc1_separators_is_read() -> None:
    scanned = parse_barcode(f"]d201{GTIN14}10ABC123\x1d3922001", DEFAULT)
    assert (scanned.gtin, scanned.price) == (GTIN14, 1)


def test_an_ean13_behind_its_identifier_is_a_plain_gtin() -> None:
    scanned = parse_barcode("]E05901234123457", DEFAULT)
    assert (scanned.kind, scanned.gtin, scanned.price) == ("gtin", "05901234123457", None)


def test_a_scale_label_behind_an_ean_identifier_keeps_its_price() -> None:
    label = "2012345023703"
    assert parse_barcode(f"]E0{label}", DEFAULT).price == 2370


@pytest.mark.parametrize("code", ["]", "]Z", "]C1", "]E0]E05901234123457", "]x9123"])
def test_odd_symbology_prefixes_are_invalid_barcodes(code: str) -> None:
    with pytest.raises(InvalidBarcode):
        parse_barcode(code, DEFAULT)


@given(
    st.one_of(
        st.text(max_size=60),
        st.from_regex(r"\][A-Za-z0-9]{0,2}[0-9()\x1d]{0,40}", fullmatch=True),
        st.from_regex(r"\(?01\)?[0-9]{14}(\(?3[19][0-9]{2}\)?[0-9]{0,16})?", fullmatch=True),
    )
)
def test_whatever_is_scanned_the_answer_is_a_code_or_an_invalid_barcode(code: str) -> None:
    # A scanner (or a phone) can send anything: nothing but InvalidBarcode may escape, which
    # the API answers as a 422.
    try:
        scanned = parse_barcode(code, DEFAULT)
    except InvalidBarcode:
        return
    assert scanned.gtin is not None or scanned.plu is not None
