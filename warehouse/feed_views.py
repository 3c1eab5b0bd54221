"""Each subscriber's view of the warehouse, read under the database role that scopes it.

The same statements the outbox computes changes with (sql/feed/<slice>/), run over everyone
under the slice's role: a district bureau's agency role, the subsidy office's role, the
partners' role naming the partner (as the portal's partner scope does). Row-level security
decides what each sees, so a mirror that equals this view was scoped by the rules the database
enforces.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from warehouse.outbox import SLICE_STATEMENTS, Subscription, scope_persons, scope_targets, utc_times
from warehouse.sql import statement

SUBSIDY_OFFICE_ROLE = "skillsync_subsidy_office"
PARTNER_ROLE = "skillsync_partner"

View = dict[str, tuple[str, dict[str, Any]]]  # record key -> (kind, payload)


def slice_role(subscription: Subscription, slice_: str) -> str:
    if slice_ == "district":
        return f"agency_{subscription.district_code}"
    if slice_ == "subsidies":
        return SUBSIDY_OFFICE_ROLE
    return PARTNER_ROLE


def subscriber_view(conn: Connection, subscription: Subscription) -> View:
    """Every record the subscriber's slices hold now, each read under its slice's role.

    Runs in the caller's transaction and leaves its role as it found it.
    """
    view: View = {}
    with utc_times(conn):
        scope_persons(conn, "SELECT person FROM warehouse.dim_person")
        scope_targets(conn, [subscription])
        days = list(conn.execute(text("SELECT DISTINCT business_day FROM warehouse.discrepancy"
                                      " WHERE person IS NULL")).scalars())
        for slice_ in subscription.slices:
            role = slice_role(subscription, slice_)
            conn.execute(text(f'GRANT SELECT ON feed_persons, feed_targets TO "{role}"'))
            conn.execute(text("SELECT set_config('role', :role, true),"
                              " set_config('skillsync.partner_id', :partner, true)"),
                         {"role": role, "partner": subscription.subscriber})
            try:
                for name in SLICE_STATEMENTS[slice_]:
                    for row in conn.execute(statement(name), {"days": days}).mappings():
                        view[row["record_key"]] = (row["kind"], row["payload"])
            finally:
                conn.execute(text("RESET ROLE"))
                conn.execute(text("SELECT set_config('skillsync.partner_id', '', true)"))
    return view
