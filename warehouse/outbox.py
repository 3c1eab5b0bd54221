"""The transactional outbox of the sync feed: each subscriber's changes, written with the facts.

A load restates the records of the people its day touches and the partner figures of a few
days (warehouse.reconcile). In the same transaction, `publish_changes` computes each
subscriber's view of exactly those people and days (the SQL under sql/feed/<slice>/), compares
it with what each subscriber was last sent (ops.feed_published, a digest per record) and
writes an upsert for every new or changed record and a delete for every record gone from a
view, numbered per subscriber. A rerun that changes nothing writes nothing. A subscriber that
is new, or whose subscription changed, is compared whole, once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, text

from adapters.settings import Settings
from schemas.partners import Partner, PartnerRegistry
from schemas.sync import SLICES
from warehouse.sql import names, statement

# Woken by a commit that wrote changes: the relay listens on it.
CHANNEL = "skillsync_feed"
SLICE_STATEMENTS: dict[str, tuple[str, ...]] = {
    slice_: names(f"feed/{slice_}") for slice_ in SLICES}
_VIEW_COLUMNS = "subscriber, kind, record_key, person, scope_day, payload"


@dataclass(frozen=True)
class Subscription:
    subscriber: str
    slices: tuple[str, ...]
    district_code: str | None

    @classmethod
    def of(cls, partner: Partner) -> Subscription:
        return cls(partner.partner_id, tuple(sorted(partner.feeds)), partner.district_code)

    def targets(self) -> list[dict[str, Any]]:
        """One row of feed_targets per slice: who receives it, scoped by agency or partner."""
        return [{"subscriber": self.subscriber, "slice": s,
                 "agency": f"agency_{self.district_code}" if s == "district" else None,
                 "partner_id": self.subscriber} for s in self.slices]


def subscriptions(registry: PartnerRegistry | None = None) -> list[Subscription]:
    """Who subscribes to what: in `registry`, else in the registry the settings name (the
    consumers' file, SKILLSYNC_PARTNERS_REGISTRY)."""
    registry = registry or Settings.load().registry.load()
    return [Subscription.of(p) for p in registry if p.feeds]


def publish_changes(conn: Connection, days: Sequence[date], run_id: str,
                    registry: PartnerRegistry | None = None) -> dict[str, int]:
    """Write the changes of the people in night_persons and of `days` (inside a load).

    Returns the changes written per subscriber.
    """
    wanted = subscriptions(registry)
    established, whole = _sync_subscribers(conn, wanted)
    written: dict[str, int] = {}
    with utc_times(conn):
        if established:
            scope_persons(conn, "SELECT person FROM night_persons")
            written |= _diff(conn, established, days, run_id, whole=False)
        if whole:
            scope_persons(conn, "SELECT person FROM warehouse.dim_person")
            every_day = list(conn.execute(text(
                "SELECT DISTINCT business_day FROM warehouse.discrepancy"
                " WHERE person IS NULL")).scalars())
            written |= _diff(conn, whole, every_day, run_id, whole=True)
    if written:
        conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})
    return written


@contextmanager
def erasure_changes(conn: Connection, persons: Sequence[str], run_id: str) -> Iterator[None]:
    """Around an erasure's removal of rows: every record of the persons that a subscriber was
    sent is deleted from it, and holders of a certificate number they shared are restated."""
    conn.execute(text(
        "CREATE TEMP TABLE feed_erased ON COMMIT DROP AS SELECT DISTINCT o.person"
        " FROM warehouse.fact_certificate f JOIN warehouse.fact_certificate o"
        "   ON o.certificate_number = f.certificate_number AND o.person <> f.person"
        " WHERE f.person = ANY(:persons) AND NOT o.person = ANY(:persons)"),
        {"persons": list(persons)})
    with utc_times(conn):
        conn.execute(text(
            "CREATE TEMP TABLE feed_changes ON COMMIT DROP AS"
            " SELECT subscriber, kind, record_key, person, scope_day,"
            "  CAST(NULL AS jsonb) AS payload, CAST(NULL AS bytea) AS digest,"
            "  'delete' AS operation FROM ops.feed_published WHERE person = ANY(:persons)"),
            {"persons": list(persons)})
        deleted = _write(conn, run_id)
    yield
    co_holders = [p for (p,) in conn.execute(text("SELECT person FROM feed_erased"))]
    conn.execute(text("DROP TABLE feed_erased"))
    written = dict(deleted)
    if co_holders:
        established, _ = _sync_subscribers(conn, subscriptions(), write=False)
        with utc_times(conn):
            scope_persons(conn, "SELECT unnest(CAST(:co AS text[]))", {"co": co_holders})
            for subscriber, n in _diff(conn, established, [], run_id, whole=False).items():
                written[subscriber] = written.get(subscriber, 0) + n
    if written:
        conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})


def _sync_subscribers(conn: Connection, wanted: list[Subscription], *, write: bool = True
                      ) -> tuple[list[Subscription], list[Subscription]]:
    """Bring feed_subscriber in line with the registry; (unchanged, new or changed).

    Without `write`, only says which are which (the next load takes in the changes).
    """
    known = {s: (tuple(slices), district) for s, slices, district in conn.execute(text(
        "SELECT subscriber, slices, district_code FROM ops.feed_subscriber"))}
    established, whole = [], []
    for sub in wanted:
        before = known.get(sub.subscriber)
        if before == (sub.slices, sub.district_code):
            established.append(sub)
            continue
        whole.append(sub)
        if not write:
            continue
        conn.execute(text(
            "INSERT INTO ops.feed_subscriber (subscriber, slices, district_code)"
            " VALUES (:s, :slices, :district) ON CONFLICT (subscriber) DO UPDATE SET"
            " slices = EXCLUDED.slices, district_code = EXCLUDED.district_code,"
            " updated_at = now()"),
            {"s": sub.subscriber, "slices": list(sub.slices), "district": sub.district_code})
    # A subscriber gone from the registry keeps what it was sent and receives nothing more.
    gone = sorted(set(known) - {s.subscriber for s in wanted})
    if gone and write:
        conn.execute(text("UPDATE ops.feed_subscriber SET slices = '{}', updated_at ="
                          " now() WHERE subscriber = ANY(:gone) AND slices <> '{}'"),
                     {"gone": gone})
    return established, whole


def scope_persons(conn: Connection, select: str, params: Mapping[str, Any] | None = None) -> None:
    """feed_persons: the people whose records the feed's statements compute."""
    conn.execute(text("DROP TABLE IF EXISTS feed_persons"))
    conn.execute(text(f"CREATE TEMP TABLE feed_persons ON COMMIT DROP AS {select}"), params or {})
    conn.execute(text("CREATE INDEX ON feed_persons (person)"))
    conn.execute(text("ANALYZE feed_persons"))


def scope_targets(conn: Connection, subs: Sequence[Subscription]) -> None:
    """feed_targets: the subscribers (and slices) the feed's statements compute views for."""
    conn.execute(text("DROP TABLE IF EXISTS feed_targets"))
    conn.execute(text("CREATE TEMP TABLE feed_targets (subscriber text NOT NULL, slice text"
                      " NOT NULL, agency text, partner_id text NOT NULL) ON COMMIT DROP"))
    rows = [row for sub in subs for row in sub.targets()]
    if rows:
        conn.execute(text("INSERT INTO feed_targets VALUES"
                          " (:subscriber, :slice, :agency, :partner_id)"), rows)
    conn.execute(text("ANALYZE feed_targets"))


def _diff(conn: Connection, subs: Sequence[Subscription], days: Sequence[date], run_id: str,
          *, whole: bool) -> dict[str, int]:
    """Compute the subscribers' views over feed_persons and `days`, and write the changes."""
    scope_targets(conn, subs)
    for table in ("feed_view", "feed_gone", "feed_changes", "feed_numbered"):
        conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
    conn.execute(text("CREATE TEMP TABLE feed_view (subscriber text, kind text, record_key text,"
                      " person text, scope_day date, payload jsonb) ON COMMIT DROP"))
    params = {"days": list(days)}
    for slice_ in sorted({s for sub in subs for s in sub.slices}):
        for name in SLICE_STATEMENTS[slice_]:
            conn.execute(_insert_view(name), params)
    conn.execute(statement("outbox/0_gone_everything" if whole else "outbox/0_gone_scoped"),
                 params)
    conn.execute(statement("outbox/1_changes"))
    return _write(conn, run_id)


def _insert_view(name: str) -> Any:
    return text(f"INSERT INTO feed_view ({_VIEW_COLUMNS}) {statement(name).text}")


def _write(conn: Connection, run_id: str) -> dict[str, int]:
    """Number feed_changes, write them to the outbox and record what each subscriber holds."""
    conn.execute(text("DROP TABLE IF EXISTS feed_numbered"))
    conn.execute(statement("outbox/2_number"))
    conn.execute(statement("outbox/3_outbox"), {"run_id": run_id})
    conn.execute(statement("outbox/4_published"))
    written: dict[str, int] = dict(conn.execute(text(
        "SELECT subscriber, count(*) FROM feed_numbered GROUP BY 1")).all())
    for table in ("feed_changes", "feed_numbered"):
        conn.execute(text(f"DROP TABLE {table}"))
    return written


@contextmanager
def utc_times(conn: Connection) -> Iterator[None]:
    """Times in payloads are written in UTC, whatever the session's zone: equal records,
    equal bytes, so a rerun sends nothing."""
    zone = conn.execute(text("SELECT current_setting('TimeZone')")).scalar_one()
    conn.execute(text("SELECT set_config('TimeZone', 'UTC', true)"))
    try:
        yield
    finally:
        conn.execute(text("SELECT set_config('TimeZone', :zone, true)"), {"zone": zone})
