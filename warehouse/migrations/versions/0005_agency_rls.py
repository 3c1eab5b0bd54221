"""District agencies: a role each, row-level security on warehouse tables with a district."""

from alembic import op

revision = "0005_agency_rls"
down_revision = "0004_erasure"
branch_labels = None
depends_on = None

# The current Hangzhou districts and counties of schemas/reference/hangzhou_divisions.csv at this
# revision (the city itself, 330100, is the city role). A new district needs a new revision.
AGENCY_DISTRICTS = (
    "330102", "330105", "330106", "330108", "330109", "330110", "330111", "330112", "330113",
    "330114", "330122", "330127", "330182",
)
# Retired codes still found in records, read by the agency that took the area over in the
# 2014-2021 reorganisations (Xiacheng into Gongshu, Jianggan into Shangcheng, the county-level
# cities Fuyang and Lin'an into their districts).
RETIRED_SUCCESSORS = {"330103": "330105", "330104": "330102", "330183": "330111",
                      "330185": "330112"}
DISTRICT_TABLES = ("fact_enrollment", "fact_evaluation", "fact_certificate",
                   "fact_subsidy_eligibility", "subsidy_review")
# Shared dimensions and the views over district tables: safe to read whatever the district.
AGENCY_READABLE = ("dim_date", "dim_occupation", "dim_level", "dim_district", "dim_institution",
                   "dim_partner", "dim_subsidy_rule", "agency_district", "enrollment_canonical",
                   "subsidy_list")
VIEWS = ("enrollment_canonical", "subsidy_list")
# Roles are cluster-wide, so several databases (and concurrent migrations) share them.
GROUP_ROLES = ("skillsync_city", "skillsync_agency", "skillsync_loader")

# current_user, never role membership: a login that may switch to several agencies sees none
# of them until it does.
MY_DISTRICT = ("district_code IN (SELECT a.district_code FROM warehouse.agency_district a"
               " WHERE a.agency = current_user)")


def agency_role(district_code: str) -> str:
    return f"agency_{district_code}"


def _create_roles() -> None:
    roles = ", ".join(f"'{r}'" for r in (*GROUP_ROLES, *map(agency_role, AGENCY_DISTRICTS)))
    op.execute(f"""
        DO $$
        DECLARE r text;
        BEGIN
          FOREACH r IN ARRAY ARRAY[{roles}] LOOP
            BEGIN
              EXECUTE format('CREATE ROLE %I NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB'
                             ' NOCREATEROLE', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
            END;
            IF r LIKE 'agency\\_%' THEN
              BEGIN
                EXECUTE format('GRANT skillsync_agency TO %I', r);
              EXCEPTION WHEN unique_violation THEN NULL;
              END;
            END IF;
          END LOOP;
          -- Under FORCE ROW LEVEL SECURITY the owner obeys policies too: the owner that loads
          -- the night (when not a superuser, who bypasses them) writes through the loader's.
          IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
            EXECUTE format('GRANT skillsync_loader TO %I', current_user);
          END IF;
        END $$""")


def upgrade() -> None:
    _create_roles()
    op.execute("""CREATE TABLE warehouse.agency_district (
        agency text NOT NULL, district_code text NOT NULL,
        PRIMARY KEY (agency, district_code))""")
    mapping = [(agency_role(code), code) for code in AGENCY_DISTRICTS] + [
        (agency_role(successor), retired) for retired, successor in RETIRED_SUCCESSORS.items()]
    op.execute("INSERT INTO warehouse.agency_district VALUES "
               + ", ".join(f"('{agency}', '{code}')" for agency, code in mapping))
    # A district agency's decision on a subsidy of its district: the one table agencies write.
    op.execute("""CREATE TABLE warehouse.subsidy_review (
        certificate_number text NOT NULL, person text NOT NULL, district_code text NOT NULL,
        decision text NOT NULL CHECK (decision IN ('approved', 'withheld')), note text,
        reviewed_by text NOT NULL DEFAULT current_user,
        reviewed_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (certificate_number, person))""")
    for table in DISTRICT_TABLES:
        op.execute(f"ALTER TABLE warehouse.{table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE warehouse.{table} FORCE ROW LEVEL SECURITY")
        op.execute(f"""CREATE POLICY loader_all ON warehouse.{table} TO skillsync_loader
                       USING (true) WITH CHECK (true)""")
        op.execute(f"""CREATE POLICY city_reads ON warehouse.{table} FOR SELECT
                       TO skillsync_city USING (true)""")
        op.execute(f"""CREATE POLICY agency_reads ON warehouse.{table} FOR SELECT
                       TO skillsync_agency USING ({MY_DISTRICT})""")
    # A review names a subsidy row the agency can see, in its own district, as itself.
    reviewable = f"""{MY_DISTRICT} AND reviewed_by = current_user AND EXISTS (
        SELECT 1 FROM warehouse.fact_subsidy_eligibility s
        WHERE s.certificate_number = subsidy_review.certificate_number
          AND s.person = subsidy_review.person
          AND s.district_code = subsidy_review.district_code)"""
    op.execute(f"""CREATE POLICY agency_inserts ON warehouse.subsidy_review FOR INSERT
                   TO skillsync_agency WITH CHECK ({reviewable})""")
    op.execute(f"""CREATE POLICY agency_updates ON warehouse.subsidy_review FOR UPDATE
                   TO skillsync_agency USING ({MY_DISTRICT}) WITH CHECK ({reviewable})""")
    # Views read their tables as the reader, so the tables' policies apply through them.
    for view in VIEWS:
        op.execute(f"ALTER VIEW warehouse.{view} SET (security_invoker = true)")
    op.execute("GRANT USAGE ON SCHEMA warehouse TO skillsync_city, skillsync_agency")
    op.execute("GRANT SELECT ON ALL TABLES IN SCHEMA warehouse TO skillsync_city")
    readable = ", ".join(f"warehouse.{t}" for t in (*DISTRICT_TABLES, *AGENCY_READABLE))
    op.execute(f"GRANT SELECT ON {readable} TO skillsync_agency")
    op.execute("GRANT INSERT, UPDATE ON warehouse.subsidy_review TO skillsync_agency")


def downgrade() -> None:
    # Roles stay: other databases of the cluster may still use them.
    op.execute("REVOKE ALL ON ALL TABLES IN SCHEMA warehouse FROM skillsync_city, skillsync_agency")
    op.execute("REVOKE USAGE ON SCHEMA warehouse FROM skillsync_city, skillsync_agency")
    for view in VIEWS:
        op.execute(f"ALTER VIEW warehouse.{view} RESET (security_invoker)")
    for table in DISTRICT_TABLES[:-1]:
        for policy in ("loader_all", "city_reads", "agency_reads"):
            op.execute(f"DROP POLICY {policy} ON warehouse.{table}")
        op.execute(f"ALTER TABLE warehouse.{table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE warehouse.{table} DISABLE ROW LEVEL SECURITY")
    op.execute("DROP TABLE warehouse.subsidy_review")
    op.execute("DROP TABLE warehouse.agency_district")
