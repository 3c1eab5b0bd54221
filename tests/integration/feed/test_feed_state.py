"""The portal's feed state: a partner sees how far its own feed is published, and nobody else's."""

from __future__ import annotations

import psycopg
import pytest

from portal import reads
from portal.db import Database, Scope
from tests.support.feed import relay_settings
from tests.support.nightly import load_days
from warehouse.relay import Relay

pytestmark = pytest.mark.integration


def test_a_partner_sees_its_feed_published_against_its_last_change_and_no_other_feed(
        feed_city, kafka_bootstrap):
    city = feed_city(events=300, days=2)
    load_days(city.database_url, city.days, "night")
    partner = next(p.partner_id for p in city.registry if p.role == "training_platform")
    other = next(s for s in city.subscribers if s != partner)
    with psycopg.connect(city.database_url) as conn:
        row = conn.execute("SELECT max(version) FROM ops.feed_outbox WHERE subscriber = %s",
                           (partner,)).fetchone()
    assert row and row[0]
    last = int(row[0])
    db = Database(city.database_url, pool_size=1)
    try:
        with db.scoped(Scope("skillsync_partner", partner)) as conn:
            before = reads.feed_state(conn, partner)
            others = reads.feed_state(conn, other)
        Relay(relay_settings(city.database_url, kafka_bootstrap)).run(until_caught_up=True)
        with db.scoped(Scope("skillsync_partner", partner)) as conn:
            after = reads.feed_state(conn, partner)
        with db.scoped(Scope("skillsync_operator")) as conn:
            operator_view = reads.feed_state(conn, other)
    finally:
        db.dispose()

    assert (before.available, before.last_version, before.published_version) == (True, last, 0)
    assert (after.last_version, after.published_version) == (last, last)
    assert before.state != after.state
    # Row-level security: another subscriber's feed is not there for this partner at all,
    # while an operator reads it.
    assert not others.available and others.last_version is None
    assert operator_view.available and operator_view.published_version == (
        operator_view.last_version)
