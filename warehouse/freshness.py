"""Has ingestion landed everything the broker appended before a business day's cutoff?"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from adapters.ingest_lag import partition_lag
from adapters.settings import Settings


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


def ingest_progress(settings: Settings, cutoff: datetime) -> IngestProgress:
    """Compare, per partition, the first offset at or after the cutoff with the landed position.

    Offsets come from the broker's append-time index, so the answer is the same whenever asked.
    Landed positions are the consumers' read positions, past transaction markers and aborted
    records, so a partition whose last write is a commit marker is caught up once read.
    """
    behind = partition_lag(settings.kafka, database_url=settings.database.libpq,
                           group_id=settings.ingest.group_id,
                           topic_pattern=settings.ingest.topic_pattern, before=cutoff)
    return IngestProgress(cutoff, behind)
