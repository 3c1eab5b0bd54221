"""The follower reads a change only under a contract it knows, and only if it keeps to it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson
import pytest

from partners.follow import FollowStats, UnknownContract, read_batch
from schemas.sync_examples import example_sync_events
from warehouse.relay import Change, message_headers

UPSERTED = "org.skillsync.sync.certificate_outcome.upserted.v1"
DELETED = "org.skillsync.sync.certificate_outcome.deleted.v1"
KEY = example_sync_events()[UPSERTED]["subject"]


class Record(NamedTuple):
    offset: int
    headers: list[tuple[str, bytes]]
    value: bytes | None


def _record(offset: int, version: int, type_name: str = UPSERTED, key: str = KEY,
            **data: Any) -> Record:
    """A change as the relay publishes it (its headers in the relay's order)."""
    event = example_sync_events()[type_name]
    payload = orjson.dumps({**event["data"], **data}).decode() if "data" in event else None
    kind, operation = type_name.split(".")[-3:-1]
    change = Change(version, "upsert" if operation == "upserted" else "delete", kind, key,
                    payload, datetime(2026, 11, 2, 18, tzinfo=UTC))
    return Record(offset, message_headers("bj_school", change),
                  payload.encode() if payload is not None else None)


def test_a_batch_leaves_each_records_last_state_and_the_position_after_it() -> None:
    records = [_record(10, 4, status="in_force"), _record(11, 5, status="revoked"),
               _record(12, 6, key="other"), _record(13, 7, DELETED, key="other")]
    stats = FollowStats()

    batch = read_batch(records, 0, stats)

    assert batch.refused is None and (batch.next_offset, batch.version) == (14, 7)
    assert batch.final["other"] is None
    key, kind, version, payload = batch.final[KEY]  # type: ignore[misc]
    assert (key, kind, version) == (KEY, "certificate_outcome", 5)
    assert orjson.loads(payload)["status"] == "revoked"
    assert (stats.upserts, stats.deletes, stats.repeats) == (3, 1, 0)


def test_headers_in_any_order_read_the_same_as_in_the_relays() -> None:
    records = [_record(3, 8), _record(4, 9, DELETED, key="gone")]
    shuffled = [r._replace(headers=r.headers[::-1]) for r in records]
    assert read_batch(shuffled, 0) == read_batch(records, 0)


def test_changes_up_to_the_mirrors_version_are_dropped_as_repeats() -> None:
    stats = FollowStats()
    batch = read_batch([_record(20, 5), _record(21, 6, status="revoked"), _record(22, 7)], 6,
                       stats)
    assert (batch.next_offset, batch.version, stats.repeats, stats.upserts) == (23, 7, 2, 1)


def test_a_contract_version_the_kit_does_not_know_is_refused_by_name_after_what_came_before(
        ) -> None:
    future = _record(9, 7)
    future.headers[:] = [(n, v.replace(b".v1", b".v2")) for n, v in future.headers]

    batch = read_batch([_record(8, 6, key="before"), future, _record(10, 8)], 0)

    assert isinstance(batch.refused, UnknownContract)
    assert str(batch.refused).startswith("offset 9 (version 7) has type")
    assert "upserted.v2" in str(batch.refused)
    # Applying the batch applies only what came before the refused change.
    assert (list(batch.final), batch.next_offset, batch.version) == (["before"], 9, 6)


def _without(name: str, record: Record) -> Record:
    return record._replace(headers=[h for h in record.headers if h[0] != name])


def _with(name: str, value: bytes, record: Record) -> Record:
    return record._replace(headers=[(n, value if n == name else v) for n, v in record.headers])


@pytest.mark.parametrize("broken", [
    _record(1, 7)._replace(value=None),  # an upsert without data
    _record(1, 7)._replace(value=b'{"status": "lost"}'),  # data off its schema
    _record(1, 7)._replace(value=b'{"status": '),  # data that is not JSON
    _without("ce_changeversion", _record(1, 7)),
    _without("ce_subject", _record(1, 7)),
    _without("ce_type", _record(1, 7)),
    _with("ce_changeversion", b"7a", _record(1, 7)),
    _with("ce_changeversion", "\u0667".encode(), _record(1, 7)),  # a digit, but not ASCII
    _record(1, 7, DELETED)._replace(value=b"{}"),  # a delete carrying data
], ids=["no data", "off schema", "not json", "no version", "no subject", "no type",
        "version not a number", "version not ascii", "delete with data"])
def test_a_change_that_breaks_its_contract_is_refused_with_nothing_of_it_read(
        broken: Record) -> None:
    batch = read_batch([broken], 0)
    assert isinstance(batch.refused, UnknownContract)
    assert str(batch.refused).startswith("offset 1 ")
    assert (batch.final, batch.next_offset, batch.version) == ({}, 1, 0)
