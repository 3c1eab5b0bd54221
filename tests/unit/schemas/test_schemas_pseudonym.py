"""Keyed pseudonyms, key files and masked display forms."""

from __future__ import annotations

import hmac
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.pseudonym import (
    KeyFileError,
    Pseudonymiser,
    SecretBytes,
    load_key_file,
    mask_id_number,
    mask_name,
    mask_phone,
)

KEY_A, KEY_B = bytes(range(32)), bytes(range(1, 33))


def test_pseudonym_is_stable_and_depends_on_the_key() -> None:
    first = Pseudonymiser({"a": KEY_A}, "a")
    again = Pseudonymiser({"a": SecretBytes(KEY_A)}, "a")
    other = Pseudonymiser({"b": KEY_B}, "b")
    person = first.person("resident_id", "11010519491231002X")
    assert person == again.person("resident_id", " 11010519491231002x ")
    assert person != other.person("resident_id", "11010519491231002X")
    assert person != first.person("passport", "11010519491231002X")
    assert len(person) == 64 and int(person, 16) >= 0


@given(
    st.binary(min_size=32, max_size=200),
    st.sampled_from(["resident_id", "passport"]),
    st.text(max_size=40),
)
def test_pseudonym_is_the_standard_hmac_sha256_for_any_key(
    key: bytes, id_type: str, number: str
) -> None:
    message = f"{id_type}:{number.strip().upper()}".encode()
    expected = hmac.new(key, message, "sha256").hexdigest()
    pseudonymiser = Pseudonymiser({"old": KEY_A, "now": key}, "now")
    assert pseudonymiser.person(id_type, number) == expected
    assert (
        Pseudonymiser({"now": key, "new": KEY_B}, "new").person_under("now", id_type, number)
        == expected
    )


def test_rotation_keeps_old_pseudonyms_computable() -> None:
    rotated = Pseudonymiser({"a": KEY_A, "b": KEY_B}, "b")
    old = Pseudonymiser({"a": KEY_A}, "a").person("resident_id", "11010519491231002X")
    assert rotated.key_id == "b"
    assert rotated.person_under("a", "resident_id", "11010519491231002X") == old


def test_keys_never_show_in_repr() -> None:
    pseudonymiser = Pseudonymiser({"a": KEY_A}, "a")
    for shown in (repr(pseudonymiser), repr(SecretBytes(KEY_A)), str(SecretBytes(KEY_A))):
        assert KEY_A.hex() not in shown and str(KEY_A) not in shown


def test_short_or_missing_keys_are_refused() -> None:
    with pytest.raises(ValueError):
        Pseudonymiser({"a": b"short"}, "a")
    with pytest.raises(ValueError):
        Pseudonymiser({"a": KEY_A}, "b")


def test_key_file_makes_its_last_key_active(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"# pseudonym keys\na:{KEY_A.hex()}\n\nb:{KEY_B.hex()}\n", encoding="utf-8")
    loaded = load_key_file(path)
    assert (loaded.key_id, loaded.key_ids) == ("b", ("a", "b"))
    expected = Pseudonymiser({"b": KEY_B}, "b").person("resident_id", "X")
    assert loaded.person("resident_id", "X") == expected


@pytest.mark.parametrize("body", ["", "# nothing\n", "a:zz-not-hex\n", "nocolon\n", "a:abcd\n"])
def test_bad_key_file_is_a_configuration_error_that_hides_the_line(
    tmp_path: Path, body: str
) -> None:
    path = tmp_path / "keys"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(KeyFileError) as caught:
        load_key_file(path)
    assert "zz-not-hex" not in str(caught.value)


@pytest.mark.parametrize("name", ["王", "张三", "欧阳娜娜", "O" + "x" * 47])
def test_a_name_mask_has_one_length_whatever_the_name(name: str) -> None:
    assert len(mask_name(name)) == 3


def test_masks_keep_only_a_little() -> None:
    assert mask_id_number("11010519491231002X") == "1101************2X"
    assert mask_id_number("E1234") == "*****"
    assert mask_name("张三") == "张**"
    assert mask_name("王") == "王**"
    assert mask_name("O" + "x" * 47) == "O**"
    assert mask_phone("13800138000") == "138****8000"
    assert mask_phone("0571-87654321") == "***********21"
