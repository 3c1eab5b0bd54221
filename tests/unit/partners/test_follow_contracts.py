"""The follower reads a change only under a contract it knows, and only if it keeps to it."""

from __future__ import annotations

import orjson
import pytest

from partners.follow import UnknownContract, read_change
from schemas.sync_examples import example_sync_events

UPSERTED = "org.skillsync.sync.certificate_outcome.upserted.v1"
DELETED = "org.skillsync.sync.certificate_outcome.deleted.v1"


def _record(type_name: str, *, version: str = "7") -> tuple[list[tuple[str, bytes]], bytes | None]:
    event = example_sync_events()[type_name]
    headers = [("ce_type", type_name.encode()), ("ce_changeversion", version.encode()),
               ("ce_subject", event["subject"].encode())]
    return headers, orjson.dumps(event["data"]) if "data" in event else None


def test_an_upsert_and_a_delete_of_a_known_contract_are_read() -> None:
    upsert = read_change(3, *_record(UPSERTED))
    delete = read_change(4, *_record(DELETED))
    assert (upsert.kind, upsert.version, upsert.value is not None) == (
        "certificate_outcome", 7, True)
    assert delete.value is None and delete.record_key == upsert.record_key


def test_a_contract_version_the_kit_does_not_know_is_refused_by_name() -> None:
    headers, value = _record(UPSERTED)
    headers[0] = ("ce_type", UPSERTED.replace(".v1", ".v2").encode())
    with pytest.raises(UnknownContract, match=r"offset 9 \(version 7\).*upserted\.v2"):
        read_change(9, headers, value)


@pytest.mark.parametrize("break_it", [
    lambda h, v: (h, None),  # an upsert without data
    lambda h, v: (h, b'{"status": "lost"}'),  # data off its schema
    lambda h, v: ([x for x in h if x[0] != "ce_changeversion"], v),
])
def test_a_change_that_breaks_its_contract_is_refused(break_it) -> None:
    with pytest.raises(UnknownContract):
        read_change(1, *break_it(*_record(UPSERTED)))
    with pytest.raises(UnknownContract):
        read_change(1, _record(DELETED)[0], b"{}")  # a delete carrying data
