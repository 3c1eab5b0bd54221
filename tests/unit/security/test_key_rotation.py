"""Pseudonym keys: stable under one key version, different under the next, old ones recomputable."""

from __future__ import annotations

from pathlib import Path

from infra.local import LocalServices
from infra.stack import ensure_pseudonym_key
from schemas.pseudonym import load_key_file
from tests.support.seed import Seeded, derived_seed

ID_NUMBER = "11010519491231002X"


def _key_file(tmp_path: Path) -> Path:
    ensure_pseudonym_key(LocalServices(state_dir=tmp_path))
    return tmp_path / "secrets" / "pseudonym.keys"


def _rotate(path: Path, key_id: str) -> None:
    """The documented procedure: append a new key line; the last line becomes active."""
    with path.open("a", encoding="utf-8") as handle:
        handle.write(f"{key_id}:{Seeded(derived_seed('rotation', key_id)).key().hex()}\n")


def test_the_first_key_is_private_to_its_owner(tmp_path: Path) -> None:
    path = _key_file(tmp_path)

    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert load_key_file(path).key_id == "k1"


def test_a_pseudonym_is_stable_under_one_key_version(tmp_path: Path) -> None:
    path = _key_file(tmp_path)

    first = load_key_file(path).person("resident_id", ID_NUMBER)
    again = load_key_file(path).person("resident_id", ID_NUMBER.lower())

    assert first == again
    assert ID_NUMBER not in first


def test_rotation_activates_the_new_key_and_keeps_the_old_pseudonyms_computable(
        tmp_path: Path) -> None:
    path = _key_file(tmp_path)
    before = load_key_file(path).person("resident_id", ID_NUMBER)

    _rotate(path, "k2")
    rotated = load_key_file(path)

    assert rotated.key_id == "k2"
    assert rotated.key_ids == ("k1", "k2")
    assert rotated.person("resident_id", ID_NUMBER) != before
    assert rotated.person_under("k1", "resident_id", ID_NUMBER) == before
    assert rotated.person_under("k2", "resident_id", ID_NUMBER) == rotated.person(
        "resident_id", ID_NUMBER)
