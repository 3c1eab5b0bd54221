"""The sync check's judgement: lost, duplicated, out-of-order and unexpected changes by name."""

from __future__ import annotations

import hashlib

from quality.sync_check import FeedRecord, Sent, judge_feed


def _digest(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


# Three changes: a upserted (1), b upserted (2), a deleted (3); b is the one record left.
SENT = Sent(published={"b": (2, _digest(b'{"b":1}'))},
            outbox={1: ("a", _digest(b'{"a":1}')), 2: ("b", _digest(b'{"b":1}')), 3: ("a", None)},
            relayed=3, last_version=3)
FEED = [FeedRecord(0, "a", 1, b'{"a":1}'), FeedRecord(1, "b", 2, b'{"b":1}'),
        FeedRecord(2, "a", 3, None)]


def test_a_feed_holding_every_change_once_in_order_is_ok() -> None:
    finding = judge_feed("s", SENT, FEED)
    assert finding.ok, finding
    # Compaction keeps the latest change of each record: still complete.
    assert judge_feed("s", SENT, FEED[1:]).ok


def test_a_repeat_is_duplicated_and_a_lower_version_after_a_higher_one_out_of_order() -> None:
    finding = judge_feed("s", SENT, [FEED[0], FEED[1], FEED[0], FeedRecord(3, "a", 3, None)])
    assert finding.duplicated == ("version 1 again at offset 0",)
    swapped = judge_feed("s", SENT, [FEED[1], FEED[0], FEED[2]])
    assert swapped.out_of_order == ("version 1 at offset 0 after version 2",)


def test_a_published_record_missing_from_the_feed_is_lost() -> None:
    finding = judge_feed("s", SENT, [FEED[0], FEED[2]])
    assert finding.lost == ("b: version 2 is not on the topic",)
    # Not yet relayed: not lost, only late.
    assert judge_feed("s", Sent(SENT.published, SENT.outbox, 1, 3), [FEED[0]]).lost == ()


def test_a_change_the_warehouse_never_wrote_or_wrote_otherwise_is_unexpected() -> None:
    forged = judge_feed("s", SENT, [*FEED, FeedRecord(3, "c", 4, b"{}")])
    altered = judge_feed("s", SENT, [FEED[0], FeedRecord(1, "b", 2, b'{"b":2}'), FEED[2]])
    kept = judge_feed("s", SENT, FEED[:2])  # the delete of a never reached the topic
    assert forged.unexpected and "wrote no such change" in forged.unexpected[0]
    assert any("not the change" in u for u in altered.unexpected)
    assert kept.unexpected == ("a: on the topic (version 1), deleted or never sent by the "
                               "warehouse",)
