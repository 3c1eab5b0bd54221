"""What `python -m consumers status` reports: lag, last landed event, rejects, group members."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import psycopg

from adapters.ingest_lag import partition_lag
from adapters.kafka import connect_admin
from adapters.settings import Settings
from schemas.topics import partner_of_topic


@dataclass(frozen=True)
class PartnerStatus:
    partner_id: str
    lag: int
    last_landed_at: datetime | None
    rejects_24h: dict[str, int]


@dataclass(frozen=True)
class Member:
    """A process the group coordinator lists as a member of the consumer group."""

    client_id: str  # skillsync-consumer-<host>-<pid>
    host: str
    partitions: tuple[str, ...]


@dataclass(frozen=True)
class GroupStatus:
    group_id: str
    state: str
    members: tuple[Member, ...]
    # Partitions of the subscribed topics no member owns, with records still to land.
    unowned_behind: dict[str, int] = field(default_factory=dict)


def group_status(settings: Settings, behind: dict[tuple[str, int], int]) -> GroupStatus:
    """The group's members and their partitions, as the group coordinator lists them."""
    kafka, group_id = settings.kafka, settings.ingest.group_id
    admin = connect_admin(kafka.bootstrap_servers, timeout=10, **kafka.kafka_security())
    try:
        described = admin.describe_groups([group_id]).get(group_id) or {}
    finally:
        admin.close()
    members = []
    owned: set[tuple[str, int]] = set()
    for member in described.get("members") or ():
        assignment = (member.get("member_assignment") or {}).get("assigned_partitions") or ()
        names = []
        for topic in assignment:
            for partition in topic["partitions"]:
                owned.add((topic["topic"], partition))
                names.append(f"{topic['topic']}[{partition}]")
        members.append(Member(member["client_id"], str(member.get("client_host", "")).lstrip("/"),
                              tuple(sorted(names))))
    unowned = {f"{t}[{p}]": n for (t, p), n in sorted(behind.items()) if n and (t, p) not in owned}
    return GroupStatus(group_id, str(described.get("group_state") or "Dead"),
                       tuple(sorted(members, key=lambda m: m.client_id)), unowned)


def collect(settings: Settings) -> tuple[list[PartnerStatus], GroupStatus]:
    database_url = settings.database.libpq
    behind = partition_lag(settings.kafka, database_url=database_url,
                           group_id=settings.ingest.group_id,
                           topic_pattern=settings.ingest.topic_pattern)
    group = group_status(settings, behind)
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
            for p in sorted(set(lag) | set(last) | set(rejects))], group


def render(rows: list[PartnerStatus], group: GroupStatus | None = None) -> str:
    lines = [f"{'partner':<14} {'lag':>8}  {'last landed (UTC)':<25} rejects in 24h"]
    for row in rows:
        landed = row.last_landed_at.strftime("%Y-%m-%d %H:%M:%S") if row.last_landed_at else "-"
        reasons = ", ".join(f"{k}={v}" for k, v in row.rejects_24h.items()) or "-"
        lines.append(f"{row.partner_id:<14} {row.lag:>8}  {landed:<25} {reasons}")
    if group is None:
        return "\n".join(lines)
    lines += ["", f"group {group.group_id}: {group.state}, {len(group.members)} members in it "
              "(a process not listed here is not in the group)"]
    for member in group.members:
        owned = ", ".join(member.partitions) or "no partitions"
        lines.append(f"  in group  {member.client_id} ({member.host}): {owned}")
    if group.unowned_behind:
        behind = ", ".join(f"{name}: {n}" for name, n in group.unowned_behind.items())
        lines.append(f"  behind with no member owning them: {behind}")
    return "\n".join(lines)
