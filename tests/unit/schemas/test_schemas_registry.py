"""Topics, the partners registry and the shipped reference data."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from schemas import reference
from schemas.events import FAMILIES
from schemas.identity import credit_code_is_valid
from schemas.partners import RegistryError, load_registry
from schemas.topics import (
    EVENTS_TOPIC_PATTERN,
    events_topic,
    partner_of_topic,
    rejects_topic,
    sync_topic,
)


def test_topic_names_round_trip() -> None:
    assert events_topic("eval07") == "skills.events.eval07"
    assert rejects_topic("eval07") == "skills.rejects.eval07"
    assert sync_topic("bj_bureau") == "skills.sync.bj_bureau"
    assert partner_of_topic(events_topic("xh_bureau")) == "xh_bureau"
    assert re.match(EVENTS_TOPIC_PATTERN, events_topic("zjgj"))
    assert not re.match(EVENTS_TOPIC_PATTERN, rejects_topic("zjgj"))


@pytest.mark.parametrize("topic", ["skills.rejects.zjgj", "skills.events.", "skills.events.a\n"])
def test_non_events_topics_have_no_partner(topic: str) -> None:
    with pytest.raises(ValueError):
        partner_of_topic(topic)


def test_registry_ships_the_citys_partners() -> None:
    registry = load_registry()
    evaluation_orgs = [p for p in registry if p.role == "evaluation_org"]
    assert len(evaluation_orgs) == 16
    assert {"zjgj", "xgxy", "bj_bureau", "xh_bureau", "tl_bureau"} <= {
        p.partner_id for p in registry
    }
    assert sum(p.role == "technician_college" for p in registry) == 2
    assert all(p.credit_code and credit_code_is_valid(p.credit_code) for p in registry)
    assert all(p.district_code in reference.divisions() for p in registry)


def test_roles_split_training_from_certification() -> None:
    registry = load_registry()
    platform, evaluator = registry.get("zjgj"), registry.get("eval01")
    assert platform and evaluator
    assert platform.may_publish("enrollment.created")
    assert not platform.may_publish("certificate.issued")
    assert evaluator.may_publish("certificate.issued")
    assert not evaluator.may_publish("enrollment.created")
    assert all(p.may_publish("control.totals") for p in registry if p.allowed_types)
    assert registry.get("nobody") is None


@pytest.mark.parametrize(
    "body",
    [
        '[[partner]]\npartner_id = "a"\nname = "A"\nrole = "wizard"\nallowed_types = []\n',
        '[[partner]]\npartner_id = "a"\nname = "A"\nrole = "evaluation_org"\n'
        'allowed_types = ["certificate.forged"]\n',
        "[[partner]]\nname = 'A'\n",
        "not toml [",
    ],
)
def test_malformed_registry_is_a_configuration_error(tmp_path: Path, body: str) -> None:
    path = tmp_path / "partners.toml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(RegistryError):
        load_registry(path)


def test_every_party_receives_its_slices_back() -> None:
    registry = load_registry()
    office = registry.get("subsidy_office")
    assert office and office.role == "subsidy_office" and not office.allowed_types
    assert office.feeds == {"subsidies"}
    bureau, platform, evaluator = (registry.get(p) for p in ("bj_bureau", "zjgj", "eval01"))
    assert bureau and bureau.feeds == {"district", "notices", "enrollment_outcomes"}
    assert platform and platform.feeds == {"notices", "enrollment_outcomes"}
    assert evaluator and evaluator.feeds == {"notices", "certificate_outcomes"}


@pytest.mark.parametrize(
    ("feeds", "district", "refused"),
    [
        ('["gossip"]', '"330106"', "unknown feeds"),
        ('["district", "subsidies"]', '"330106"', "only one of"),
        ('["district"]', None, "no district_code"),
    ],
)
def test_a_subscription_the_feed_cannot_serve_is_a_configuration_error(
        tmp_path: Path, feeds: str, district: str | None, refused: str) -> None:
    path = tmp_path / "partners.toml"
    path.write_text('[[partner]]\npartner_id = "a"\nname = "A"\nrole = "district_bureau"\n'
                    'allowed_types = []\n' + (f"district_code = {district}\n" if district else "")
                    + f"feeds = {feeds}\n", encoding="utf-8")
    with pytest.raises(RegistryError, match=refused):
        load_registry(path)


def test_a_partner_may_narrow_its_roles_feeds(tmp_path: Path) -> None:
    path = tmp_path / "partners.toml"
    path.write_text('[roles.training_platform]\nallowed_types = []\n'
                    'feeds = ["notices", "enrollment_outcomes"]\n\n[[partner]]\n'
                    'partner_id = "a"\nname = "A"\nrole = "training_platform"\n'
                    'feeds = ["notices"]\n\n[[partner]]\npartner_id = "b"\nname = "B"\n'
                    'role = "training_platform"\n', encoding="utf-8")
    registry = load_registry(path)
    assert registry.get("a").feeds == {"notices"}  # type: ignore[union-attr]
    assert registry.get("b").feeds == {"notices", "enrollment_outcomes"}  # type: ignore[union-attr]


def test_registry_families_exist() -> None:
    assert all(p.allowed_types <= FAMILIES for p in load_registry())


def test_occupations_include_the_citys_new_occupations_and_map_old_codes() -> None:
    assert reference.occupations()["4-01-06-02"].name_en == "internet marketing specialist"
    assert "直播销售员" in reference.occupations()["4-01-06-02"].work_types
    assert reference.current_occupation_code("4-01-02-07") == "4-01-06-02"
    assert reference.current_occupation_code("9-99-99-99") is None
    assert all(new in reference.occupations() for new in reference.occupation_code_map().values())


@pytest.mark.parametrize(
    ("loader", "name", "column"),
    [
        (reference.divisions, "hangzhou_divisions.csv", "code"),
        (reference.occupations, "occupations_2022.csv", "code"),
        (reference.occupation_code_map, "occupation_code_map.csv", "old_code"),
    ],
)
def test_reference_codes_that_break_the_contract_patterns_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loader, name: str, column: str
) -> None:
    shipped = (reference.REFERENCE_DIR / name).read_text(encoding="utf-8").splitlines()
    header = shipped[0].split(",")
    first = shipped[1].split(",")
    first[header.index(column)] += " "
    (tmp_path / name).write_text("\n".join([shipped[0], ",".join(first)]), encoding="utf-8")
    monkeypatch.setattr(reference, "REFERENCE_DIR", tmp_path)
    loader.cache_clear()
    try:
        with pytest.raises(ValueError, match=name):
            loader()
    finally:
        loader.cache_clear()


def test_divisions_keep_retired_codes_apart() -> None:
    assert not reference.divisions()["330106"].retired
    assert reference.divisions()["330103"].retired
    assert reference.skill_levels()[5].name_en == "junior"


def test_subsidy_amounts_come_from_dated_rules() -> None:
    on = date(2023, 5, 1)
    assert reference.subsidy_amount("training_subsidy", "skill_level", 1, on) == 3000
    assert reference.subsidy_amount("training_subsidy", "special_ability", None, on) == 800
    assert reference.subsidy_amount("skill_upgrade", "skill_level", 2, on) is None
    assert reference.subsidy_amount("training_subsidy", "skill_level", 5, date(2019, 1, 1)) is None
