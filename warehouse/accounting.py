"""The accounting identity: every staged event is reflected in the warehouse or named with a reason.

For each loaded day, per partner and event family: staged = reflected + quarantined + flagged,
where reflected means a fact row, a change applied to one or a control totals row, quarantined
means validation held it back, and flagged means a discrepancy names it. An event in none of
these was dropped silently: the load refuses to commit such a night.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection, text

from schemas.errors import RunFailed
from warehouse.sql import statement

OUTCOMES = ("reflected", "quarantined", "flagged", "unaccounted")
SHOWN = 20  # unaccounted events named in an error; the counts are always complete


@dataclass(frozen=True)
class DayAccount:
    business_day: date
    outcomes: list[tuple[str, str, str, str]]  # (partner, event id, family, outcome)

    @property
    def counts(self) -> dict[tuple[str, str], Counter[str]]:
        """(partner, family) -> outcome -> events."""
        counts: dict[tuple[str, str], Counter[str]] = {}
        for partner, _, family, outcome in self.outcomes:
            counts.setdefault((partner, family), Counter())[outcome] += 1
        return counts

    @property
    def unaccounted(self) -> list[tuple[str, str, str]]:
        return sorted((p, e, f) for p, e, f, outcome in self.outcomes
                      if outcome == "unaccounted")

    @property
    def balanced(self) -> bool:
        return not self.unaccounted

    def events(self) -> list[tuple[str, str, str, str]]:
        return self.outcomes


class UnaccountedEvents(RunFailed):
    """Staged events that the warehouse neither reflects nor names: the night must not commit."""


def account_day(conn: Connection, day: date) -> DayAccount:
    """Where each event appended on `day` ended up in the warehouse."""
    rows = conn.execute(statement("checks/accounting"), {"d": day})
    return DayAccount(day, [(p, e, f, o) for p, e, f, o in rows])


def record_account(conn: Connection, account: DayAccount) -> None:
    """Keep the day's identity per partner and family (the report and the portal show it)."""
    conn.execute(text("DELETE FROM ops.accounting WHERE business_day = :d"),
                 {"d": account.business_day})
    counts = account.counts
    if counts:
        conn.execute(
            text("INSERT INTO ops.accounting (business_day, partner_id, family, staged,"
                 " reflected, quarantined, flagged, unaccounted) VALUES (:d, :partner, :family,"
                 " :staged, :reflected, :quarantined, :flagged, :unaccounted)"),
            [{"d": account.business_day, "partner": partner, "family": family,
              "staged": sum(outcomes.values()), **{o: outcomes[o] for o in OUTCOMES}}
             for (partner, family), outcomes in sorted(counts.items())])


def require_balanced(account: DayAccount) -> None:
    if account.balanced:
        return
    named = ", ".join(f"{p}/{e} ({f})" for p, e, f in account.unaccounted[:SHOWN])
    more = len(account.unaccounted) - SHOWN
    raise UnaccountedEvents(
        f"{account.business_day}: {len(account.unaccounted)} staged events are neither in the "
        f"warehouse nor named by a discrepancy or quarantine: {named}"
        + (f" and {more} more" if more > 0 else ""))
