"""The portal's scopes are PostgreSQL's: a page's query for someone else's rows gets none."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from portal import reads
from portal.db import Database, Scope
from tests.integration.portal.conftest import Logins, PortalWeek

pytestmark = pytest.mark.integration


@pytest.fixture
def db(portal_week: PortalWeek) -> Iterator[Database]:
    database = Database(portal_week.database_url, pool_size=1)
    yield database
    database.dispose()


def _refusals(week: PortalWeek) -> reads.RefusalFilter:
    return reads.RefusalFilter(week.days[0], week.days[-1])


def test_a_partner_scope_reads_only_that_partners_rows(db: Database, portal_week: PortalWeek,
                                                       logins: Logins) -> None:
    mine, other = logins.partner, logins.other_partner
    with db.scoped(Scope("skillsync_partner", mine)) as conn:
        seen = {table: {p for (p,) in conn.execute(text(f"SELECT partner_id FROM {table}"))}
                for table in ("staging.rejected", "warehouse.partner_scorecard",
                              "warehouse.discrepancy", "staging.events")}
        families = {f for (f,) in conn.execute(text("SELECT DISTINCT family FROM staging.events"))}
        # A page asking for another partner's rows under this scope: nothing, not an error.
        theirs = reads.refusals(conn, other, _refusals(portal_week), page=1, page_size=50)
        their_days = reads.scorecards(conn, other, portal_week.days[0], portal_week.days[-1])
        their_notices = reads.notices(conn, other, portal_week.days[0], portal_week.days[-1])
        their_totals = reads.control_totals(conn, other, portal_week.days[0],
                                            portal_week.days[-1])
    assert seen["staging.rejected"] == {mine} and seen["warehouse.partner_scorecard"] == {mine}
    assert seen["warehouse.discrepancy"] <= {mine} and seen["staging.events"] <= {mine}
    assert families <= {"control.totals"}
    assert (theirs.total, theirs.rows, their_days, their_notices, their_totals) == (
        0, [], [], [], [])
    (their_refusals,), = portal_week.rows(
        "SELECT count(*) FROM staging.rejected WHERE partner_id = %s", (other,))
    assert their_refusals > 0


def test_an_agency_scope_reads_only_its_district_and_learners_only_as_masked_forms(
        db: Database, portal_week: PortalWeek, logins: Logins) -> None:
    first, last = portal_week.days[0], portal_week.days[-1]
    where = reads.FactFilter(first, last)
    with db.scoped(Scope(f"agency_{logins.district}")) as conn:
        theirs = {what: list(reads.records(conn, what, logins.other_district, where, limit=100))
                  for what in reads.RECORDS}
        mine = list(reads.records(conn, "certificates", logins.district, where, limit=1000))
        events = conn.execute(text("SELECT count(*) FROM staging.events")).scalar_one()
    assert theirs == {what: [] for what in reads.RECORDS}
    (facts,), = portal_week.rows(
        "SELECT count(*) FROM warehouse.fact_certificate c JOIN warehouse.agency_district a"
        " USING (district_code) WHERE a.agency = %s AND business_day BETWEEN %s AND %s",
        (f"agency_{logins.other_district}", first, last))
    assert facts > 0
    assert mine and all(r.id_masked and "*" in r.id_masked for r in mine)  # type: ignore[attr-defined]
    # Only the events behind the agency's own facts are visible in staging.
    (behind,), = portal_week.rows(
        "SELECT count(*) FROM staging.events e WHERE EXISTS (SELECT 1 FROM"
        " warehouse.fact_certificate c JOIN warehouse.agency_district a USING (district_code)"
        " WHERE a.agency = %s AND c.partner_id = e.partner_id AND c.event_id = e.event_id)"
        " OR EXISTS (SELECT 1 FROM warehouse.fact_evaluation v JOIN warehouse.agency_district a"
        " USING (district_code) WHERE a.agency = %s AND v.partner_id = e.partner_id"
        " AND v.event_id = e.event_id)", (f"agency_{logins.district}",) * 2)
    assert events == behind > 0


@pytest.mark.parametrize("statement", [
    "SELECT person FROM staging.events LIMIT 1",
    "SELECT person FROM warehouse.dim_person LIMIT 1",
    "SELECT password_hash FROM portal.account LIMIT 1",
])
@pytest.mark.parametrize("role", ["skillsync_partner", "agency_330106", "skillsync_operator"])
def test_no_scope_reads_pseudonyms_of_staging_or_the_accounts(db: Database, role: str,
                                                              statement: str) -> None:
    if role == "skillsync_operator" and "dim_person" in statement:
        pytest.skip("the city role reads the warehouse, dim_person included")
    with pytest.raises(DBAPIError) as refused, db.scoped(Scope(role, "x")) as conn:
        conn.execute(text(statement))
    assert refused.value.orig.sqlstate == "42501"  # type: ignore[union-attr]


def test_a_scoped_transaction_cannot_write(db: Database, logins: Logins) -> None:
    with pytest.raises(DBAPIError) as refused, db.scoped(Scope("skillsync_operator")) as conn:
        conn.execute(text("DELETE FROM staging.rejected"))
    assert refused.value.orig.sqlstate == "25006"  # type: ignore[union-attr]


def test_a_plain_portal_login_takes_each_scope_and_reads_nothing_by_itself(
        portal_week: PortalWeek, logins: Logins) -> None:
    login = f"portal_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(portal_week.database_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {login} LOGIN IN ROLE skillsync_portal")
        conn.execute(f"GRANT skillsync_partner, skillsync_operator, agency_{logins.district}"
                     f" TO {login} WITH INHERIT FALSE")
    url = make_url(portal_week.database_url).set(username=login).render_as_string(
        hide_password=False)
    db = Database(url, pool_size=1)
    try:
        with db.scoped(Scope("skillsync_partner", logins.partner)) as conn:
            partners = {p for (p,) in conn.execute(text(
                "SELECT DISTINCT partner_id FROM staging.rejected"))}
        with db.scoped(Scope(f"agency_{logins.district}")) as conn:
            certificates = conn.execute(text(
                "SELECT count(*) FROM warehouse.fact_certificate")).scalar_one()
        with db.portal() as conn:
            accounts = conn.execute(text("SELECT count(*) FROM portal.account")).scalar_one()
        with pytest.raises(DBAPIError) as refused, db.portal() as conn:
            conn.execute(text("SELECT count(*) FROM staging.rejected"))
        with pytest.raises(DBAPIError), \
                db.scoped(Scope(f"agency_{logins.other_district}")) as conn:
            pass
    finally:
        db.dispose()
        with psycopg.connect(portal_week.database_url, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {login}")
            conn.execute(f"DROP ROLE {login}")
    assert partners == {logins.partner} and certificates > 0 and accounts >= 5
    assert refused.value.orig.sqlstate == "42501"  # type: ignore[union-attr]


def test_every_table_a_scope_reads_is_under_row_level_security(portal_week: PortalWeek) -> None:
    protected = dict(portal_week.rows(
        "SELECT n.nspname || '.' || c.relname, c.relrowsecurity FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE (n.nspname, c.relname) IN"
        " (('staging', 'rejected'), ('staging', 'events'), ('warehouse', 'partner_scorecard'),"
        " ('warehouse', 'discrepancy'))"))
    assert protected == {t: True for t in ("staging.rejected", "staging.events",
                                           "warehouse.partner_scorecard",
                                           "warehouse.discrepancy")}
