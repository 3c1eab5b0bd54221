"""What `python -m consumers status` reports: lag, last landed event and recent rejects."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import psycopg
from kafka import KafkaConsumer, TopicPartition

from consumers.settings import ConsumerSettings
from infra.kafka.client_security import KafkaClientSecurity
from schemas.topics import partner_of_topic


@dataclass(frozen=True)
class PartnerStatus:
    partner_id: str
    lag: int
    last_landed_at: datetime | None
    rejects_24h: dict[str, int]


def broker_positions(*, bootstrap_servers: str, security: KafkaClientSecurity,
                     topic_pattern: str,
                     before: datetime | None = None) -> dict[tuple[str, int], int]:
    """The end offset of each matching partition, or with `before` the first offset appended
    at or after that moment (from the broker's append-time index, so the answer does not
    change with when it is asked)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers.split(","),
                             enable_auto_commit=False, isolation_level="read_committed",
                             **security.kafka_security())
    try:
        pattern = re.compile(topic_pattern)
        partitions = [TopicPartition(t, p) for t in sorted(consumer.topics()) if pattern.match(t)
                      for p in sorted(consumer.partitions_for_topic(t) or ())]
        if not partitions:
            return {}
        needed = consumer.end_offsets(partitions)
        if before is not None:
            found = consumer.offsets_for_times(
                {tp: int(before.timestamp() * 1000) for tp in partitions})
            needed = {tp: at.offset if (at := found.get(tp)) is not None else end
                      for tp, end in needed.items()}
    finally:
        consumer.close()
    return {(tp.topic, tp.partition): offset for tp, offset in needed.items()}


def partition_lag(*, bootstrap_servers: str, security: KafkaClientSecurity, topic_pattern: str,
                  database_url: str, group_id: str,
                  before: datetime | None = None) -> dict[tuple[str, int], int]:
    """Records of each matching partition the group has not landed yet.

    With `before`, only records the broker appended before that moment count.
    """
    needed = broker_positions(bootstrap_servers=bootstrap_servers, security=security,
                              topic_pattern=topic_pattern, before=before)
    if not needed:
        return {}
    with psycopg.connect(database_url) as conn:
        landed = {(t, p): o for t, p, o in conn.execute(
            "SELECT topic, partition, next_offset FROM staging.consumer_offsets "
            "WHERE group_id = %s", (group_id,))}
    return {key: max(0, offset - landed.get(key, 0)) for key, offset in needed.items()}


def collect(settings: ConsumerSettings) -> list[PartnerStatus]:
    database_url = settings.database_url.get_secret_value()
    behind = partition_lag(bootstrap_servers=settings.bootstrap_servers, security=settings,
                           topic_pattern=settings.topic_pattern, database_url=database_url,
                           group_id=settings.group_id)
    with psycopg.connect(database_url) as conn:
        last: dict[str, datetime] = dict(conn.execute(
            "SELECT partner_id, max(landed_at) FROM staging.events GROUP BY partner_id"
        ).fetchall())
        rejects: dict[str, dict[str, int]] = {}
        for partner, reason, count in conn.execute(
            "SELECT partner_id, reason_code, count(*) FROM staging.rejected "
            "WHERE rejected_at > now() - interval '24 hours' GROUP BY 1, 2 ORDER BY 1, 3 DESC"
        ):
            rejects.setdefault(partner, {})[reason] = count
    lag: dict[str, int] = {}
    for (topic, _), records in behind.items():
        partner = partner_of_topic(topic)
        lag[partner] = lag.get(partner, 0) + records
    return [PartnerStatus(p, lag.get(p, 0), last.get(p), rejects.get(p, {}))
            for p in sorted(set(lag) | set(last) | set(rejects))]


def render(rows: list[PartnerStatus]) -> str:
    lines = [f"{'partner':<14} {'lag':>8}  {'last landed (UTC)':<25} rejects in 24h"]
    for row in rows:
        landed = row.last_landed_at.strftime("%Y-%m-%d %H:%M:%S") if row.last_landed_at else "-"
        reasons = ", ".join(f"{k}={v}" for k, v in row.rejects_24h.items()) or "-"
        lines.append(f"{row.partner_id:<14} {row.lag:>8}  {landed:<25} {reasons}")
    return "\n".join(lines)
