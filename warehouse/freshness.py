"""Has ingestion landed everything the broker appended before a business day's cutoff?"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import psycopg
from kafka import KafkaConsumer, TopicPartition


@dataclass(frozen=True)
class IngestProgress:
    cutoff: datetime
    # partition -> records appended before the cutoff and not yet landed
    behind: dict[tuple[str, int], int]

    @property
    def caught_up(self) -> bool:
        return not any(self.behind.values())

    def describe(self) -> str:
        late = {f"{t}[{p}]": n for (t, p), n in sorted(self.behind.items()) if n}
        return "caught up" if not late else f"behind by partition: {late}"


def ingest_progress(*, bootstrap_servers: str, database_url: str, group_id: str,
                    topic_pattern: str, cutoff: datetime) -> IngestProgress:
    """Compare, per partition, the first offset at or after the cutoff with the landed position.

    Offsets come from the broker's append-time index, so the answer is the same whenever asked.
    """
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers.split(","),
                             enable_auto_commit=False, isolation_level="read_committed")
    try:
        pattern = re.compile(topic_pattern)
        partitions = [TopicPartition(t, p) for t in sorted(consumer.topics()) if pattern.match(t)
                      for p in sorted(consumer.partitions_for_topic(t) or ())]
        if not partitions:
            return IngestProgress(cutoff, {})
        at_cutoff = consumer.offsets_for_times(
            {tp: int(cutoff.timestamp() * 1000) for tp in partitions})
        ends = consumer.end_offsets(partitions)
    finally:
        consumer.close()
    with psycopg.connect(database_url) as conn:
        landed = {(t, p): o for t, p, o in conn.execute(
            "SELECT topic, partition, next_offset FROM staging.consumer_offsets "
            "WHERE group_id = %s", (group_id,))}
    behind = {}
    for tp in partitions:
        found = at_cutoff.get(tp)
        needed = found.offset if found is not None else ends[tp]
        behind[(tp.topic, tp.partition)] = max(0, needed - landed.get((tp.topic, tp.partition), 0))
    return IngestProgress(cutoff, behind)
