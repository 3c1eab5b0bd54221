"""Refused events come back from the rejects topic once the fix is in, exactly once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import psycopg
import pytest

from consumers.replay import ReplayRequest, replay_rejects
from schemas.partners import load_registry
from schemas.topics import events_topic
from tests.support.consumers import landed, service
from tests.support.events import encode, enrollment, poison, registry_with
from tests.support.kafka import publish
from tests.support.nightly import appended_days, load_days

pytestmark = pytest.mark.integration

VALID = 5


@dataclass(frozen=True)
class Refused:
    partner: str
    database_url: str
    bootstrap: str
    still_invalid: dict[str, bytes]


@pytest.fixture
def refused_for_an_unregistered_partner(kafka_bootstrap, database_url, new_partners,
                                        pseudonymiser) -> Refused:
    """A partner's valid and invalid events, all refused because it was not registered yet."""
    partners = new_partners("training_platform")
    pid = partners["training_platform"]
    broken = poison(pid)
    still_invalid = {code: broken[code] for code in ("schema.extra_field", "id_number.checksum")}
    publish(kafka_bootstrap, events_topic(pid),
            [encode(enrollment(pid, n)) for n in range(VALID)] + list(still_invalid.values()))
    service(kafka_bootstrap, database_url, partners, pseudonymiser,
            registry=load_registry()).run(until_caught_up=True)
    with psycopg.connect(database_url) as conn:
        reasons = conn.execute("SELECT DISTINCT reason_code FROM staging.rejected").fetchall()
    assert reasons == [("authorise.unknown_partner",)]
    return Refused(pid, database_url, kafka_bootstrap, still_invalid)


def _replay(refused: Refused, pseudonymiser, run_id: str = "replay-1", **request):
    fixed = registry_with({refused.partner: "training_platform"})
    return replay_rejects(
        ReplayRequest(partner_id=refused.partner, **request), database_url=refused.database_url,
        bootstrap_servers=refused.bootstrap, registry=fixed, pseudonymiser=pseudonymiser,
        run_id=run_id)


def _rejected(database_url: str) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT kafka_offset, reason_code, original_reason_code, replay_outcome, replay_run"
            " FROM staging.rejected ORDER BY kafka_partition, kafka_offset").fetchall()


def test_a_dry_run_reports_what_would_land_and_writes_nothing(
        refused_for_an_unregistered_partner, pseudonymiser):
    refused = refused_for_an_unregistered_partner
    before = _rejected(refused.database_url)

    outcome = _replay(refused, pseudonymiser, dry_run=True)

    assert outcome.candidates == VALID + 2
    assert outcome.outcomes == {"landed": VALID, "refused": 2}
    assert outcome.refused_by_reason == {code: 1 for code in refused.still_invalid}
    assert landed(refused.database_url) == []
    assert _rejected(refused.database_url) == before


def test_refused_events_land_after_the_fix_and_the_rest_keep_their_new_reason(
        refused_for_an_unregistered_partner, pseudonymiser):
    refused = refused_for_an_unregistered_partner

    outcome = _replay(refused, pseudonymiser, dry_run=False)

    assert outcome.outcomes == {"landed": VALID, "refused": 2}
    with psycopg.connect(refused.database_url) as conn:
        staged = conn.execute(
            "SELECT e.event_id, e.appended_at = r.appended_at, e.append_day = r.append_day"
            " FROM staging.events e JOIN staging.rejected r USING (topic, kafka_partition,"
            " kafka_offset) ORDER BY 1").fetchall()
    assert staged == [(f"{refused.partner}-evt-{n:07d}", True, True) for n in range(VALID)]
    rows = _rejected(refused.database_url)
    assert sorted(r[1:] for r in rows) == sorted(
        [("authorise.unknown_partner", "authorise.unknown_partner", "landed", "replay-1")] * VALID
        + [(code, "authorise.unknown_partner", "refused", "replay-1")
           for code in refused.still_invalid])
    assert outcome.days_to_reload == appended_days(refused.database_url)


def test_replaying_again_lands_nothing_twice(refused_for_an_unregistered_partner, pseudonymiser):
    refused = refused_for_an_unregistered_partner
    _replay(refused, pseudonymiser, dry_run=False)
    first = sorted(landed(refused.database_url))

    again = _replay(refused, pseudonymiser, run_id="replay-2", dry_run=False)

    # Only the events still refused are tried again.
    assert again.candidates == 2
    assert again.outcomes == {"refused": 2}
    assert sorted(landed(refused.database_url)) == first
    with psycopg.connect(refused.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM staging.redeliveries").fetchone() == (0,)


def test_a_replay_takes_only_the_reason_and_days_asked_for(
        refused_for_an_unregistered_partner, pseudonymiser):
    refused = refused_for_an_unregistered_partner
    with psycopg.connect(refused.database_url) as conn:
        (day,) = conn.execute("SELECT min(append_day) FROM staging.rejected").fetchone() or (None,)

    other_reason = _replay(refused, pseudonymiser, dry_run=False, reason_code="decode.not_json")
    before_the_day = _replay(refused, pseudonymiser, dry_run=False,
                             last_day=day - timedelta(days=1))
    that_day = _replay(refused, pseudonymiser, dry_run=False, first_day=day, last_day=day,
                       reason_code="authorise.unknown_partner")

    assert other_reason.candidates == before_the_day.candidates == 0
    assert that_day.candidates == VALID + 2
    assert len(landed(refused.database_url)) == VALID


def test_replayed_events_reach_the_warehouse_and_count_once_on_the_scorecard(
        refused_for_an_unregistered_partner, pseudonymiser):
    refused = refused_for_an_unregistered_partner
    outcome = _replay(refused, pseudonymiser, dry_run=False)

    load_days(refused.database_url, outcome.days_to_reload, "reload")

    with psycopg.connect(refused.database_url) as conn:
        facts = conn.execute("SELECT count(*) FROM warehouse.fact_enrollment").fetchone()
        card = conn.execute(
            "SELECT sum(received), sum(valid), sum(rejected) FROM warehouse.partner_scorecard"
            " WHERE partner_id = %s", (refused.partner,)).fetchone()
    assert facts == (VALID,)
    assert card == (VALID + 2, VALID, 2)

