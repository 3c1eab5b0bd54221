"""Simulated city days through the real broker and consumer, and checksums of warehouse tables."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta

import psycopg
from kafka import KafkaProducer

from adapters.database import scoped_engine
from consumers.service import IngestService
from partners.samples import registry_with
from partners.simulate import OutgoingMessage, Simulation
from schemas.days import SHANGHAI
from schemas.partners import PartnerRegistry
from schemas.pseudonym import Pseudonymiser
from tests.support.consumers import consumer_settings
from warehouse.load import ReconcileRules, load_day

# Tables whose rows a night decides; run bookkeeping (load_runs, validation_results, and
# accounting, each day's identity as of its latest load) is not one.
NIGHT_TABLES = (
    "fact_enrollment", "fact_completion", "fact_evaluation", "fact_certificate",
    "fact_subsidy_eligibility", "discrepancy", "partner_scorecard", "fact_control_totals",
    "dim_date", "dim_person",
    "dim_institution", "dim_partner", "dim_occupation", "dim_level", "dim_district",
    "dim_subsidy_rule",
)


def registry_of(partners: Mapping[str, str]) -> PartnerRegistry:
    """Only the given {partner_id: role}, each allowed what its role is in the shipped registry."""
    return registry_with(partners, shipped=False)


# Test topics replaying past days keep the producer's timestamps: production topics are stamped
# with the broker's append time, but a test publishing last week's traffic now needs the broker
# to record when each message was really sent. They are kept whatever their age, which
# retention would otherwise delete at once. Set at creation: a topic altered afterwards stamps
# its first messages with the broker's clock until the change reaches its log.
SENDER_CLOCK = {"message.timestamp.type": "CreateTime", "retention.ms": "-1"}


# A DAG run needs a logical date on or after its DAG's start date (2026-11-01) and not ahead of
# the scheduler's clock; which one does not matter to what the run does (its business day is
# a parameter), so each test draws one from its seed within November 2026.
FIRST_RUN = datetime(2026, 11, 2, 2, 0, tzinfo=SHANGHAI)


def run_moment(rng: random.Random) -> datetime:
    """A logical date for a test's DAG run, drawn from the test's seed."""
    return FIRST_RUN + timedelta(minutes=rng.randrange(28 * 24 * 60))


def at_noon_ms(day: date) -> int:
    """A record timestamp on `day` (Asia/Shanghai), for topics that keep producers' times."""
    return int(datetime.combine(day, time(12), SHANGHAI).timestamp() * 1000)


def publish_as_sent(bootstrap: str, messages: Iterable[OutgoingMessage]) -> int:
    """Publish in order, each stamped with the time the simulated broker appends it."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                             linger_ms=5)
    try:
        futures = [producer.send(message.topic, message.value, key=message.key,
                                 headers=list(message.headers),
                                 timestamp_ms=message.appended_at_ms)
                   for message in messages]
        producer.flush(timeout=60)
        return sum(1 for f in futures if f.get(timeout=60) is not None)
    finally:
        producer.close(timeout=10)


def ingest(bootstrap: str, database_url: str, partner_ids: Iterable[str],
           registry: PartnerRegistry, pseudonymiser: Pseudonymiser, group: str) -> None:
    """Run the real consumer over the partners' topics until it has landed everything."""
    pattern = "^skills\\.events\\.(" + "|".join(sorted(partner_ids)) + ")$"
    settings = consumer_settings(bootstrap, database_url, group_id=group, topic_pattern=pattern,
                                 linger_ms=20)
    IngestService(settings, registry=registry, pseudonymiser=pseudonymiser).run(
        until_caught_up=True)


def land_simulation(simulation: Simulation, *, bootstrap: str, database_url: str,
                    partners: Mapping[str, str], pseudonymiser: Pseudonymiser) -> None:
    """Publish as sent and ingest; the partners' topics must keep SENDER_CLOCK timestamps."""
    publish_as_sent(bootstrap, simulation.messages)
    ingest(bootstrap, database_url, partners, registry_of(partners), pseudonymiser,
           group=f"nightly-{min(partners)}")


def table_checksums(database_url: str, tables: Iterable[str] = NIGHT_TABLES) -> dict[str, str]:
    """md5 of each table's rows in a total order: equal checksums, identical rows."""
    with psycopg.connect(database_url) as conn:
        return {t: (conn.execute(
            f"SELECT md5(coalesce(string_agg(r::text, E'\\n' ORDER BY r::text), ''))"
            f" FROM warehouse.{t} r").fetchone() or ("",))[0] for t in tables}


def appended_days(database_url: str) -> list[date]:
    with psycopg.connect(database_url) as conn:
        return [d for (d,) in conn.execute(
            "SELECT DISTINCT append_day FROM staging.events ORDER BY 1")]


def load_days(database_url: str, days: Iterable[date], run: str,
              rules: ReconcileRules | None = None) -> None:
    """Load each day in turn as the nightly load would, with run ids `<run>-<day>`."""
    with scoped_engine(database_url) as engine:
        for day in days:
            load_day(engine, day, f"{run}-{day}", rules)
