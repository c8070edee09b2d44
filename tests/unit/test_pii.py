"""Personal data at rest: sealing, the blind index, key rotation across processes, phones."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from shared.member_codes import is_member_code, luhn_digit, new_member_code
from shared.phones import InvalidPhone, mask_phone, normalise_phone
from shared.pii import Keyring, KeyringError, sealed_key_id

KEYRING = Keyring.generate()


@given(st.text(max_size=200))
def test_what_is_sealed_opens_only_in_its_own_context(text: str) -> None:
    sealed = KEYRING.seal(text, context="member:1:name")
    if len(text.encode()) >= 8:  # a shorter run of bytes may turn up by chance
        assert text.encode() not in sealed
    assert KEYRING.open(sealed, context="member:1:name") == text
    with pytest.raises(KeyringError):
        KEYRING.open(sealed, context="member:2:name")  # copied onto another row


def test_altered_or_foreign_bytes_do_not_open() -> None:
    sealed = bytearray(KEYRING.seal("+8613800138000", context="c"))
    sealed[-1] ^= 1
    with pytest.raises(KeyringError):
        KEYRING.open(bytes(sealed), context="c")
    with pytest.raises(KeyringError):
        KEYRING.open(b"\x02garbage", context="c")
    with pytest.raises(KeyringError):
        Keyring.generate().open(KEYRING.seal("x", context="c"), context="c")


def test_the_blind_index_finds_equal_values_and_only_with_its_key() -> None:
    a = KEYRING.blind_index("phone", "+8613800138000")
    assert a == KEYRING.blind_index("phone", "+8613800138000")
    assert a != KEYRING.blind_index("phone", "+8613800138001")
    assert a != KEYRING.blind_index("code", "+8613800138000")
    assert a != Keyring.generate().blind_index("phone", "+8613800138000")
    assert len(a) == 64


def test_a_rotation_keeps_old_seals_readable_and_another_process_learns_the_new_key(
    tmp_path: Path,
) -> None:
    path = tmp_path / "members.keys"
    first = Keyring.load_or_create(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert Keyring.load_or_create(path) == first  # made once
    old = first.seal("Li Lei", context="m")
    rotated = first.rotate()
    rotated.save(path)
    assert rotated.current != first.current
    assert rotated.open(old, context="m") == "Li Lei"
    assert rotated.needs_resealing(old)
    new = rotated.seal("Li Lei", context="m")
    assert sealed_key_id(new) == rotated.current and not rotated.needs_resealing(new)
    # A process started before the rotation reads the new key from the file when it meets it.
    assert first.open(new, context="m") == "Li Lei"
    assert first.blind_index("phone", "1") == rotated.blind_index("phone", "1")


def test_a_broken_keyring_file_is_refused_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "members.keys"
    path.write_text('{"current": "k9", "keys": {}, "index_key": ""}')
    with pytest.raises(KeyringError, match=r"members\.keys"):
        Keyring.load(path)


@pytest.mark.parametrize(
    ("typed", "e164"),
    [
        ("13800138000", "+8613800138000"),
        ("138 0013 8000", "+8613800138000"),
        ("+86 138-0013-8000", "+8613800138000"),
        ("+44 7911 123456", "+447911123456"),
    ],
)
def test_mobile_numbers_are_normalised(typed: str, e164: str) -> None:
    assert normalise_phone(typed, region="CN") == e164


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "12345",
        "010 6552 9988",
        "13800138000; DROP",
        "\uff11\uff13\uff18" + "\uff10" * 8,
        "1" * 40,
    ],
)
def test_what_is_not_a_mobile_number_is_refused(typed: str) -> None:
    with pytest.raises(InvalidPhone):
        normalise_phone(typed, region="CN")


def test_a_phone_is_shown_masked() -> None:
    assert mask_phone("+8613800138000") == "138****8000"
    assert mask_phone("+447911123456") == "791***3456"


def test_a_mask_hides_the_national_number_of_every_region_as_a_parse_reads_it() -> None:
    """The mask finds the country code without parsing the number: for every region's example
    mobile number it shows what the parsed national number shows."""
    checked = 0
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        example = phonenumbers.example_number_for_type(region, PhoneNumberType.MOBILE)
        if example is None:
            continue
        e164 = phonenumbers.format_number(example, PhoneNumberFormat.E164)
        national = str(phonenumbers.parse(e164, None).national_number)
        shown = 3 if len(national) > 7 else 1
        hidden = len(national) - (7 if len(national) > 7 else 3)
        assert mask_phone(e164) == national[:shown] + "*" * hidden + national[shown + hidden :], (
            region,
            e164,
        )
        checked += 1
    assert checked > 200


def test_member_codes_carry_a_check_digit() -> None:
    code = new_member_code()
    assert is_member_code(code)
    wrong = code[:-1] + str((int(code[-1]) + 1) % 10)
    assert not is_member_code(wrong)
    assert luhn_digit("7992739871") == "3"  # the textbook example
    assert not is_member_code("12345")
