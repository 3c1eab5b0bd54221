"""The sync feed: subscribers, what each was last sent, the outbox and the relay's progress (in
`ops`, with the runs' other records), and the policies under which each subscriber's view of the
marts is read (docs/feed.md)."""

from alembic import op

revision = "0011_feed"
down_revision = "0010_portal"
branch_labels = None
depends_on = None

# A partner's rows are read as skillsync_partner, the partner named by the transaction's
# skillsync.partner_id (as the portal's partner scope reads them, 0010).
MY_PARTNER = "partner_id = current_setting('skillsync.partner_id', true)"
MY_DISTRICT = ("district_code IN (SELECT a.district_code FROM warehouse.agency_district a"
               " WHERE a.agency = current_user)")
# Who reads every partner's rows of the lifecycle view: the loader (and so the owner).
LOADER = "pg_has_role(current_user, 'skillsync_loader', 'MEMBER')"
# discrepancy has its partner policy since 0010.
PARTNER_TABLES = ("fact_enrollment", "fact_completion", "fact_certificate",
                  "fact_subsidy_eligibility")
FEED_TABLES = ("feed_subscriber", "feed_published", "feed_outbox", "feed_relay")
FEED_STATE_TABLES = ("feed_subscriber", "feed_relay")
MY_SUBSCRIPTION = "subscriber = current_setting('skillsync.partner_id', true)"

_STATEMENTS = (
    # -- the feed's own tables ---------------------------------------------------------------
    # One row per subscriber: its slices as last seen in the registry and its last version.
    """CREATE TABLE ops.feed_subscriber (
        subscriber text PRIMARY KEY, slices text[] NOT NULL, district_code text,
        last_version bigint NOT NULL DEFAULT 0,
        updated_at timestamptz NOT NULL DEFAULT now())""",
    # What each subscriber holds now, per record: the digest of the payload it was sent last.
    """CREATE TABLE ops.feed_published (
        subscriber text NOT NULL, record_key text NOT NULL, kind text NOT NULL,
        person text, scope_day date, payload_sha256 bytea NOT NULL, version bigint NOT NULL,
        PRIMARY KEY (subscriber, record_key))""",
    # A night compares with what it restates only: by person, or by day for partner figures.
    "CREATE INDEX feed_published_person ON ops.feed_published (person)"
    " WHERE person IS NOT NULL",
    "CREATE INDEX feed_published_day ON ops.feed_published (scope_day)"
    " WHERE person IS NULL",
    # The outbox: written in the load's transaction, read in version order by the relay.
    # `person` is kept on upserts only, so an erasure removes unsent personal payloads.
    """CREATE TABLE ops.feed_outbox (
        subscriber text NOT NULL, version bigint NOT NULL,
        operation text NOT NULL CHECK (operation IN ('upsert', 'delete')),
        kind text NOT NULL, record_key text NOT NULL, payload jsonb, person text,
        run_id text NOT NULL, created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (subscriber, version),
        CHECK ((operation = 'upsert') = (payload IS NOT NULL)))""",
    "CREATE INDEX feed_outbox_person ON ops.feed_outbox (person) WHERE person IS NOT NULL",
    "CREATE INDEX feed_outbox_created ON ops.feed_outbox (created_at)",
    # How far the relay has published each subscriber's changes.
    """CREATE TABLE ops.feed_relay (
        subscriber text PRIMARY KEY, relayed_version bigint NOT NULL,
        relayed_at timestamptz NOT NULL DEFAULT now())""",
    # How far each feed got: operators read every subscriber's, a partner (the portal's partner
    # scope) its own. Enabled, not forced: the loader and the relay (the owner) are untouched.
    *(stmt for table in FEED_STATE_TABLES for stmt in (
        f"ALTER TABLE ops.{table} ENABLE ROW LEVEL SECURITY",
        f"""CREATE POLICY loader_all ON ops.{table} TO skillsync_loader
            USING (true) WITH CHECK (true)""",
        f"CREATE POLICY city_reads ON ops.{table} FOR SELECT TO skillsync_city USING (true)",
        f"""CREATE POLICY partner_reads ON ops.{table} FOR SELECT TO skillsync_partner
            USING ({MY_SUBSCRIPTION})""")),
    "GRANT SELECT ON ops.feed_subscriber, ops.feed_relay TO skillsync_city, skillsync_partner",
    # -- roles the subscribers' views are read under ------------------------------------------
    """DO $$
       DECLARE r text;
       BEGIN
         FOREACH r IN ARRAY ARRAY['skillsync_subsidy_office'] LOOP
           BEGIN
             EXECUTE format('CREATE ROLE %I NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB'
                            ' NOCREATEROLE', r);
           EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
           END;
         END LOOP;
       END $$""",
    # A district reads the completions of the trainings its district held.
    "ALTER TABLE warehouse.fact_completion ENABLE ROW LEVEL SECURITY",
    "ALTER TABLE warehouse.fact_completion FORCE ROW LEVEL SECURITY",
    """CREATE POLICY loader_all ON warehouse.fact_completion TO skillsync_loader
       USING (true) WITH CHECK (true)""",
    """CREATE POLICY city_reads ON warehouse.fact_completion FOR SELECT TO skillsync_city
       USING (true)""",
    f"""CREATE POLICY agency_reads ON warehouse.fact_completion FOR SELECT TO skillsync_agency
       USING (EXISTS (SELECT 1 FROM warehouse.fact_enrollment e
                      WHERE e.partner_id = fact_completion.partner_id
                        AND e.enrollment_id = fact_completion.enrollment_id
                        AND e.person = fact_completion.person AND e.{MY_DISTRICT}))""",
    "GRANT SELECT ON warehouse.fact_completion TO skillsync_agency",
    # The subsidy office reads every subsidy decision.
    """CREATE POLICY subsidy_office_reads ON warehouse.fact_subsidy_eligibility FOR SELECT
       TO skillsync_subsidy_office USING (true)""",
    "GRANT USAGE ON SCHEMA warehouse TO skillsync_subsidy_office",
    "GRANT SELECT ON warehouse.fact_subsidy_eligibility TO skillsync_subsidy_office",
    # A partner reads its own records (and, since 0010, the findings about them).
    *(f"""CREATE POLICY partner_reads ON warehouse.{table} FOR SELECT TO skillsync_partner
          USING ({MY_PARTNER})""" for table in PARTNER_TABLES),
    f"GRANT SELECT ON {', '.join(f'warehouse.{t}' for t in PARTNER_TABLES)}"
    " TO skillsync_partner",
    # How far each enrollment got, from records of every partner: read as the view's owner,
    # so a partner sees the lifecycle of its own enrollments and of nobody else's.
    f"""CREATE VIEW warehouse.feed_lifecycle AS
        SELECT e.partner_id, e.enrollment_id, e.person,
               EXISTS (SELECT 1 FROM warehouse.fact_evaluation v
                       WHERE v.person = e.person AND v.occupation_code = e.occupation_code
                         AND v.level = e.level) AS evaluated,
               EXISTS (SELECT 1 FROM warehouse.fact_evaluation v
                       WHERE v.person = e.person AND v.occupation_code = e.occupation_code
                         AND v.level = e.level AND v.result = 'pass') AS evaluation_passed,
               EXISTS (SELECT 1 FROM warehouse.fact_certificate c
                       WHERE c.person = e.person AND c.occupation_code = e.occupation_code
                         AND c.level = e.level AND c.status = 'in_force') AS certified
        FROM warehouse.fact_enrollment e
        WHERE {LOADER} OR e.{MY_PARTNER}""",
    "GRANT SELECT ON warehouse.feed_lifecycle TO skillsync_partner, skillsync_city",
)


def upgrade() -> None:
    for statement in _STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP VIEW warehouse.feed_lifecycle")
    for table in PARTNER_TABLES:
        op.execute(f"DROP POLICY partner_reads ON warehouse.{table}")
    op.execute(f"REVOKE SELECT ON {', '.join(f'warehouse.{t}' for t in PARTNER_TABLES)}"
               " FROM skillsync_partner")
    op.execute("DROP POLICY subsidy_office_reads ON warehouse.fact_subsidy_eligibility")
    for policy in ("loader_all", "city_reads", "agency_reads"):
        op.execute(f"DROP POLICY {policy} ON warehouse.fact_completion")
    op.execute("ALTER TABLE warehouse.fact_completion NO FORCE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE warehouse.fact_completion DISABLE ROW LEVEL SECURITY")
    op.execute("REVOKE ALL ON ALL TABLES IN SCHEMA warehouse FROM skillsync_subsidy_office")
    op.execute("REVOKE USAGE ON SCHEMA warehouse FROM skillsync_subsidy_office")
    op.execute("REVOKE SELECT ON warehouse.fact_completion FROM skillsync_agency")
    for table in reversed(FEED_TABLES):
        op.execute(f"DROP TABLE ops.{table}")
