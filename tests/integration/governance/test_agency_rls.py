"""District agencies read and write only their districts' warehouse rows, however they connect."""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from schemas import reference
from warehouse.agency import as_agency, portal_engine
from warehouse.migrate import MIGRATIONS

pytestmark = pytest.mark.integration

DISTRICT_TABLES = ("fact_enrollment", "fact_evaluation", "fact_certificate",
                   "fact_subsidy_eligibility")
# 330103 is retired: its records belong to Gongshu (330105) now. 330100 is the city itself.
DISTRICTS = ("330106", "330108", "330105", "330103", "330100", None)
SEES = {"330106": {"330106"}, "330108": {"330108"}, "330105": {"330105", "330103"},
        "330102": set()}

_INSERTS = {
    "fact_enrollment": """INSERT INTO warehouse.fact_enrollment (partner_id, enrollment_id,
        event_id, business_day, person, key_id, occupation_code, level, district_code,
        enrolled_at, canonical_partner_id, canonical_enrollment_id) VALUES ('p', %(ref)s,
        %(ref)s, '2026-11-20', %(person)s, 'k1', '4-01-06-02', 4, %(district)s, now(), 'p',
        %(ref)s)""",
    "fact_evaluation": """INSERT INTO warehouse.fact_evaluation (partner_id, evaluation_id,
        event_id, business_day, person, occupation_code, level, theory_score, practical_score,
        result, evaluated_at, district_code, corrections) VALUES ('p', %(ref)s, %(ref)s,
        '2026-11-20', %(person)s, '4-01-06-02', 4, 80, 80, 'pass', now(), %(district)s, 0)""",
    "fact_certificate": """INSERT INTO warehouse.fact_certificate (certificate_number, person,
        partner_id, event_id, business_day, certificate_type, scheme, issued_at, evaluation_id,
        district_code, status, passing_evaluation, number_shared) VALUES (%(ref)s, %(person)s,
        'p', %(ref)s, '2026-11-20', 'skill_level', 'skill_level', now(), %(ref)s,
        %(district)s, 'in_force', true, false)""",
    "fact_subsidy_eligibility": """INSERT INTO warehouse.fact_subsidy_eligibility
        (certificate_number, person, business_day, partner_id, district_code, occupation_code,
        level, certificate_type, issued_day, scheme, eligible, reason, amount_yuan) VALUES
        (%(ref)s, %(person)s, '2026-11-20', 'p', %(district)s, '4-01-06-02', 4, 'skill_level',
        '2026-11-20', 'training_subsidy', true, 'eligible', 1500)""",
}


def _ref(district: str | None) -> str:
    return f"ref-{district or 'none'}"


@dataclass(frozen=True)
class Logins:
    portal: str  # may become agency 330106, 330108, 330105; nothing by itself
    city: str


def _as_login(database_url: str, login: str) -> str:
    return make_url(database_url).set(username=login).render_as_string(hide_password=False)


@pytest.fixture
def warehouse_rows(database_url) -> str:
    """One row per district (and one with none) in every table that carries a district."""
    with psycopg.connect(database_url) as conn:
        for district in DISTRICTS:
            for sql in _INSERTS.values():
                conn.execute(sql, {"ref": _ref(district), "person": f"person-{district}",
                                   "district": district})
    return database_url


@pytest.fixture
def logins(warehouse_rows) -> Iterator[Logins]:
    """Login roles made as a deployment would make them (roles are shared by the cluster)."""
    suffix = uuid.uuid4().hex[:8]
    made = Logins(portal=f"portal_{suffix}", city=f"city_{suffix}")
    with psycopg.connect(warehouse_rows, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {made.portal} LOGIN IN ROLE skillsync_agency")
        for district in ("330106", "330108", "330105"):
            conn.execute(f"GRANT agency_{district} TO {made.portal} WITH INHERIT FALSE")
        conn.execute(f"CREATE ROLE {made.city} LOGIN IN ROLE skillsync_city")
    yield made
    with psycopg.connect(warehouse_rows, autocommit=True) as conn:
        for role in (made.portal, made.city):
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")


def _districts(conn, table: str) -> set[str | None]:
    return {d for (d,) in conn.execute(text(f"SELECT district_code FROM warehouse.{table}"))}


@pytest.mark.parametrize("agency", sorted(SEES))
def test_each_agency_sees_exactly_its_districts_rows(warehouse_rows, logins, agency):
    engine = portal_engine(_as_login(warehouse_rows, logins.portal))
    if agency == "330102":
        # The portal was not granted this agency: it cannot take its role at all.
        with pytest.raises(Exception, match="permission denied to set role"), \
                as_agency(engine, agency):
            pass
        engine.dispose()
        return
    try:
        with as_agency(engine, agency) as conn:
            seen = {table: _districts(conn, table) for table in DISTRICT_TABLES}
            through_views = {
                "subsidy_list": {d for (d,) in conn.execute(text(
                    "SELECT district_code FROM warehouse.subsidy_list"))},
                "enrollment_canonical": {r for (r,) in conn.execute(text(
                    "SELECT enrollment_id FROM warehouse.enrollment_canonical"))},
            }
    finally:
        engine.dispose()
    assert seen == {table: SEES[agency] for table in DISTRICT_TABLES}
    assert through_views == {"subsidy_list": SEES[agency],
                             "enrollment_canonical": {_ref(d) for d in SEES[agency]}}


def test_the_city_reads_every_row(warehouse_rows, logins):
    engine = portal_engine(_as_login(warehouse_rows, logins.city))
    try:
        with engine.connect() as conn:
            seen = {table: _districts(conn, table) for table in DISTRICT_TABLES}
    finally:
        engine.dispose()
    assert seen == {table: set(DISTRICTS) for table in DISTRICT_TABLES}


def test_with_no_agency_set_a_login_sees_nothing(warehouse_rows, logins):
    engine = portal_engine(_as_login(warehouse_rows, logins.portal))
    try:
        with engine.connect() as conn:
            seen = {table: _districts(conn, table)
                    for table in (*DISTRICT_TABLES, "subsidy_list", "subsidy_review")}
    finally:
        engine.dispose()
    assert seen == {table: set() for table in seen}


def test_a_pooled_connection_does_not_carry_an_agency_to_the_next_borrower(
        warehouse_rows, logins):
    engine = portal_engine(_as_login(warehouse_rows, logins.portal), pool_size=1,
                           max_overflow=0)
    try:
        with as_agency(engine, "330106") as conn:
            backend = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            assert _districts(conn, "fact_enrollment") == {"330106"}
        # Someone takes the role for the whole session and hands the connection back ...
        with engine.connect() as conn:
            conn.execute(text("SET ROLE agency_330106"))
            conn.commit()
        # ... the next borrower gets the same connection, without that role.
        with engine.connect() as conn:
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() == backend
            assert conn.execute(text("SELECT current_user")).scalar_one() == logins.portal
            assert _districts(conn, "fact_enrollment") == set()
        with as_agency(engine, "330108") as conn:
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() == backend
            assert _districts(conn, "fact_enrollment") == {"330108"}
    finally:
        engine.dispose()


def _review(conn, district: str | None, *, ref_district: str | None = None) -> None:
    conn.execute(text(
        "INSERT INTO warehouse.subsidy_review (certificate_number, person, district_code,"
        " decision) VALUES (:ref, :person, :district, 'approved')"),
        {"ref": _ref(ref_district or district), "person": f"person-{ref_district or district}",
         "district": district})


def test_an_agency_writes_reviews_only_of_its_own_districts_subsidies(warehouse_rows, logins):
    engine = portal_engine(_as_login(warehouse_rows, logins.portal))
    try:
        with as_agency(engine, "330106") as conn:
            _review(conn, "330106")
        refused_writes = {
            "another district": lambda c: _review(c, "330108"),
            "another district's subsidy under its own code":
                lambda c: _review(c, "330106", ref_district="330108"),
            "a fact table": lambda c: c.execute(text(
                "UPDATE warehouse.fact_enrollment SET level = 1")),
            "moving its review to another district": lambda c: c.execute(text(
                "UPDATE warehouse.subsidy_review SET district_code = '330108'")),
        }
        failures = {}
        for what, write in refused_writes.items():
            try:
                with as_agency(engine, "330106") as conn:
                    write(conn)
            except Exception as exc:  # the refusal's kind is asserted below
                failures[what] = getattr(exc.orig, "sqlstate", None)  # type: ignore[attr-defined]
        with as_agency(engine, "330108") as conn:
            touched = conn.execute(text(
                "UPDATE warehouse.subsidy_review SET decision = 'withheld'")).rowcount
    finally:
        engine.dispose()
    # 42501: insufficient privilege, which is also what a row-level policy violation raises.
    assert failures == {what: "42501" for what in refused_writes}
    assert touched == 0
    with psycopg.connect(warehouse_rows) as conn:
        assert conn.execute("SELECT district_code, decision, reviewed_by FROM"
                            " warehouse.subsidy_review").fetchall() == [
            ("330106", "approved", "agency_330106")]


def test_application_roles_are_not_owners_superusers_or_bypassing(warehouse_rows):
    with psycopg.connect(warehouse_rows) as conn:
        roles = conn.execute(
            "SELECT rolname, rolsuper, rolbypassrls, rolcanlogin FROM pg_roles"
            " WHERE rolname IN ('skillsync_city', 'skillsync_agency')"
            " OR rolname LIKE 'agency\\_%'").fetchall()
        owners = {o for (o,) in conn.execute(
            "SELECT pg_get_userbyid(relowner) FROM pg_class c JOIN pg_namespace n"
            " ON n.oid = c.relnamespace WHERE n.nspname = 'warehouse'")}
        protected = conn.execute(
            "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class"
            " WHERE relnamespace = 'warehouse'::regnamespace AND relname = ANY(%s)",
            (list((*DISTRICT_TABLES, "subsidy_review")),)).fetchall()
    assert len(roles) == 2 + 13
    assert {r[1:] for r in roles} == {(False, False, False)}
    assert owners.isdisjoint(r[0] for r in roles)
    assert sorted(protected) == sorted((t, True, True)
                                       for t in (*DISTRICT_TABLES, "subsidy_review"))


def test_every_current_district_has_an_agency_and_every_retired_one_a_successor():
    spec = importlib.util.spec_from_file_location(
        "agency_rls", MIGRATIONS / "versions" / "0005_agency_rls.py")
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    divisions = reference.divisions().values()
    assert set(migration.AGENCY_DISTRICTS) == {
        d.code for d in divisions if not d.retired and d.code != "330100"}
    assert set(migration.RETIRED_SUCCESSORS) == {d.code for d in divisions if d.retired}
    assert set(migration.RETIRED_SUCCESSORS.values()) <= set(migration.AGENCY_DISTRICTS)
