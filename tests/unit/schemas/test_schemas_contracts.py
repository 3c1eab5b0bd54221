"""Shipped schema files, examples, docs and version compatibility stay in step with the models."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from schemas import compat
from schemas.docs import DOC_PATH, render
from schemas.events import EVENT_TYPES
from schemas.examples import example_events
from schemas.schema_files import SYNC_SCHEMA_DIR, load_shipped, stale_files
from schemas.sync import SYNC_TYPES
from schemas.sync_examples import example_sync_events

REPO = Path(__file__).resolve().parents[3]


def test_shipped_schema_files_match_the_models() -> None:
    assert stale_files() == [], "run: python -m schemas.schema_files --write"


def test_there_is_one_schema_file_per_type_and_version() -> None:
    assert {f"org.skillsync.{stem}" for stem in load_shipped()} == set(EVENT_TYPES)


@pytest.mark.parametrize("type_name", sorted(EVENT_TYPES))
def test_each_example_is_valid_against_its_schema_file(type_name: str) -> None:
    schema = load_shipped()[type_name.removeprefix("org.skillsync.")]
    jsonschema.Draft202012Validator(schema).validate(example_events()[type_name])


def test_schemas_have_a_closed_content_model() -> None:
    for stem, schema in load_shipped().items():
        for name, definition in schema["$defs"].items():
            if definition.get("type") == "object" and "properties" in definition:
                assert definition["additionalProperties"] is False, (stem, name)


def test_an_extra_field_is_invalid_under_the_schema_file() -> None:
    event = example_events()["org.skillsync.enrollment.created.v1"]
    event["data"]["learner"]["gender"] = "f"
    schema = load_shipped()["enrollment.created.v1"]
    assert not jsonschema.Draft202012Validator(schema).is_valid(event)


def test_every_shipped_type_is_transitively_compatible_across_versions() -> None:
    assert compat.check_shipped() == {family: [] for family in compat.check_shipped()}
    assert "evaluation.recorded" in compat.check_shipped()


def schema_v2() -> dict:
    return copy.deepcopy(load_shipped()["evaluation.recorded.v2"])


def data_def(schema: dict) -> dict:
    return schema["$defs"]["EvaluationRecordedV2"]


@pytest.mark.parametrize(
    ("break_it", "expected"),
    [
        (lambda s: data_def(s)["properties"].pop("theory_score"), "removed"),
        (lambda s: data_def(s)["properties"]["level"].update(maximum=8), "constraints"),
        (
            lambda s: data_def(s)["properties"]["result"].update(enum=["pass", "fail", "absent"]),
            "constraints",
        ),
        (lambda s: data_def(s)["required"].append("work_type"), "required"),
        (lambda s: data_def(s)["required"].remove("district_code"), "required"),
        (
            lambda s: s["$defs"]["Learner"]["properties"]["phone"].update(
                anyOf=[{"type": "string"}]
            ),
            "accepted types",
        ),
    ],
)
def test_compat_checker_catches_a_breaking_change(break_it, expected: str) -> None:
    v1 = load_shipped()["evaluation.recorded.v1"]
    broken = schema_v2()
    break_it(broken)
    problems = compat.transitive_incompatibilities([v1, schema_v2(), broken])
    assert problems
    assert any(expected in problem for problem in problems)
    assert all(problem.startswith(("v1 vs v3", "v2 vs v3")) for problem in problems)


def test_compat_checker_allows_adding_an_optional_field() -> None:
    v1 = load_shipped()["evaluation.recorded.v1"]
    assert compat.incompatibilities(v1, schema_v2()) == []


def test_committed_event_docs_match_the_generator() -> None:
    assert DOC_PATH.read_text(encoding="utf-8") == render(), "run: python -m schemas.docs --write"


def test_docs_list_every_reason_code_and_type() -> None:
    from schemas.errors import REASON_CODES

    text = render()
    assert all(f"`{code}`" in text for code in REASON_CODES)
    assert all(f"`{type_name}`" in text for type_name in EVENT_TYPES)


def test_docs_generator_prints_to_stdout() -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "schemas.docs"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert printed == render()


@pytest.mark.parametrize("type_name", sorted(SYNC_TYPES))
def test_each_sync_example_is_valid_against_its_schema_file(type_name: str) -> None:
    stem = type_name.removeprefix("org.skillsync.sync.")
    schema = load_shipped(SYNC_SCHEMA_DIR)[stem]
    jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.FormatChecker()).validate(
        example_sync_events()[type_name])


def test_sync_contracts_are_checked_for_compatibility_and_breaks_are_caught() -> None:
    assert "sync.notice.upserted" in compat.check_shipped()
    v1 = load_shipped(SYNC_SCHEMA_DIR)["certificate.upserted.v1"]
    v2 = copy.deepcopy(v1)
    v2["$defs"]["Certificate"]["properties"].pop("number_shared")
    assert any("number_shared: removed" in p for p in compat.incompatibilities(v1, v2))


def test_a_delete_carries_no_data_and_an_upsert_must() -> None:
    deleted = example_sync_events()["org.skillsync.sync.notice.deleted.v1"]
    upserted = example_sync_events()["org.skillsync.sync.notice.upserted.v1"]
    schemas = load_shipped(SYNC_SCHEMA_DIR)
    assert not jsonschema.Draft202012Validator(schemas["notice.deleted.v1"]).is_valid(
        {**deleted, "data": upserted["data"]})
    assert not jsonschema.Draft202012Validator(schemas["notice.upserted.v1"]).is_valid(
        {k: v for k, v in upserted.items() if k != "data"})
