"""What `python -m consumers status` reports: lag, last landed event and recent rejects."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from kafka import KafkaConsumer, TopicPartition

from consumers.settings import ConsumerSettings
from schemas.topics import partner_of_topic


@dataclass(frozen=True)
class PartnerStatus:
    partner_id: str
    lag: int
    last_landed_at: datetime | None
    rejects_24h: dict[str, int]


def collect(settings: ConsumerSettings) -> list[PartnerStatus]:
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers.split(","),
                             enable_auto_commit=False, isolation_level="read_committed",
                             **settings.kafka_security())
    try:
        import re

        pattern = re.compile(settings.topic_pattern)
        topics = sorted(t for t in consumer.topics() if pattern.match(t))
        partitions = [TopicPartition(t, p) for t in topics
                      for p in sorted(consumer.partitions_for_topic(t) or ())]
        ends = consumer.end_offsets(partitions) if partitions else {}
    finally:
        consumer.close()
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:
        landed = {(t, p): o for t, p, o in conn.execute(
            "SELECT topic, partition, next_offset FROM staging.consumer_offsets "
            "WHERE group_id = %s", (settings.group_id,))}
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
    for tp, end in ends.items():
        partner = partner_of_topic(tp.topic)
        lag[partner] = lag.get(partner, 0) + max(0, end - landed.get((tp.topic, tp.partition), 0))
    return [PartnerStatus(p, lag.get(p, 0), last.get(p), rejects.get(p, {}))
            for p in sorted(set(lag) | set(last) | set(rejects))]


def render(rows: list[PartnerStatus]) -> str:
    lines = [f"{'partner':<14} {'lag':>8}  {'last landed (UTC)':<25} rejects in 24h"]
    for row in rows:
        landed = row.last_landed_at.strftime("%Y-%m-%d %H:%M:%S") if row.last_landed_at else "-"
        reasons = ", ".join(f"{k}={v}" for k, v in row.rejects_24h.items()) or "-"
        lines.append(f"{row.partner_id:<14} {row.lag:>8}  {landed:<25} {reasons}")
    return "\n".join(lines)
