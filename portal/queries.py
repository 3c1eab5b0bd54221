"""Every SQL statement the portal runs, in one place; named columns only.

Pages read under the request's scope (warehouse row-level security); the statements still
name their partner or district, so an operator browsing one partner sees that partner's rows.
"""

from __future__ import annotations

from sqlalchemy import text

# -- scope of one transaction ------------------------------------------------------------

SET_SCOPE = text(
    "SELECT set_config('role', :role, true), set_config('skillsync.partner_id', :partner, true),"
    " set_config('statement_timeout', :timeout, true)")
READ_ONLY = text("SET TRANSACTION READ ONLY")

# -- accounts (the portal's own login, no scope) ------------------------------------------

ACCOUNT = text(
    "SELECT username, kind, partner_id, district_code, password_hash, disabled, session_epoch"
    " FROM portal.account WHERE username = :username")
ACCOUNTS = text(
    "SELECT username, kind, partner_id, district_code, disabled, created_at, updated_at"
    " FROM portal.account ORDER BY username")
CREATE_ACCOUNT = text(
    "INSERT INTO portal.account (username, kind, partner_id, district_code, password_hash)"
    " VALUES (:username, :kind, :partner_id, :district_code, :password_hash)")
SET_PASSWORD = text(
    "UPDATE portal.account SET password_hash = :password_hash,"
    " session_epoch = session_epoch + 1, updated_at = now() WHERE username = :username")
SET_DISABLED = text(
    "UPDATE portal.account SET disabled = :disabled, session_epoch = session_epoch + 1,"
    " updated_at = now() WHERE username = :username")
RECENT_FAILURES = text(
    "SELECT count(*) FILTER (WHERE username = :username) AS by_user,"
    " count(*) FILTER (WHERE client = :client) AS by_client"
    " FROM portal.login_failure"
    " WHERE failed_at > now() - make_interval(secs => :window)"
    " AND (username = :username OR client = :client)")
RECORD_FAILURE = text(
    "INSERT INTO portal.login_failure (username, client, failed_at) VALUES"
    " (:username, :client, now())")
# Old failures are of no use once out of every window: dropped as new ones come.
FORGET_FAILURES = text(
    "DELETE FROM portal.login_failure WHERE failed_at < now() - make_interval(secs => :keep)"
    " OR (username = :username AND :succeeded)")
PARTNER_EXISTS = text("SELECT EXISTS (SELECT 1 FROM warehouse.dim_partner"
                      " WHERE partner_id = :partner_id)")

# -- partner pages ------------------------------------------------------------------------

PARTNER_NAME = text("SELECT name, role FROM warehouse.dim_partner WHERE partner_id = :partner")
PARTNER_LATEST_DAY = text(
    "SELECT max(business_day) FROM warehouse.partner_scorecard WHERE partner_id = :partner")
PARTNER_SCORECARDS = text(
    """SELECT s.business_day, s.received, s.valid, s.rejected, s.rejected_by_reason,
              s.duplicates, s.late, s.missing, s.extra,
              EXISTS (SELECT 1 FROM ops.load_runs r
                      WHERE r.business_day = s.business_day) AS loaded
       FROM warehouse.partner_scorecard s
       WHERE s.partner_id = :partner AND s.business_day BETWEEN :first AND :last
       ORDER BY s.business_day DESC""")

_REFUSAL_FILTER = """
       WHERE r.partner_id = :partner AND r.append_day BETWEEN :first AND :last
         AND (CAST(:reason AS text) IS NULL OR r.reason_code = :reason)
         AND (CAST(:stage AS text) IS NULL OR r.stage = :stage)
         AND (CAST(:event_id AS text) IS NULL OR r.event_id = :event_id)
         AND (CAST(:path AS text) IS NULL OR strpos(r.field_path, :path) > 0)"""
REFUSALS = text(
    f"""SELECT r.append_day, r.appended_at, r.event_id, r.reason_code, r.field_path, r.message,
              r.stage, r.topic, r.kafka_partition, r.kafka_offset, r.size_bytes,
              r.payload_sha256, r.replay_outcome
       FROM staging.rejected r {_REFUSAL_FILTER}
       ORDER BY r.appended_at DESC, r.topic, r.kafka_partition, r.kafka_offset DESC
       LIMIT :limit OFFSET :offset""")
REFUSAL_COUNT = text(f"SELECT count(*) FROM staging.rejected r {_REFUSAL_FILTER}")
REFUSAL_REASONS = text(
    """SELECT r.reason_code, count(*) AS refused FROM staging.rejected r
       WHERE r.partner_id = :partner AND r.append_day BETWEEN :first AND :last
       GROUP BY r.reason_code ORDER BY refused DESC, r.reason_code""")

# The partner's control totals for each day it reported (the latest report of a day wins, as
# in the night's reconciliation), beside the gaps the night found.
CONTROL_TOTALS = text(
    """WITH reported AS (
           SELECT DISTINCT ON ((e.data->>'business_day')::date)
                  (e.data->>'business_day')::date AS business_day, e.event_id, e.appended_at,
                  e.data->'counts' AS counts
           FROM staging.events e
           WHERE e.partner_id = :partner AND e.family = 'control.totals'
             AND e.sent_day BETWEEN CAST(:first AS date) - 1 AND CAST(:last AS date) + 31
             AND (e.data->>'business_day')::date BETWEEN :first AND :last
           ORDER BY (e.data->>'business_day')::date, e.appended_at DESC, e.event_id DESC),
       gaps AS (
           SELECT g.business_day,
                  jsonb_object_agg(g.detail->>'family', jsonb_build_object(
                      'counted', g.detail->'counted', 'landed', g.detail->'landed',
                      'missing_count', g.detail->'missing_count',
                      'extra_count', g.detail->'extra_count', 'severity', g.severity))
                      AS families
           FROM warehouse.discrepancy g
           WHERE g.partner_id = :partner AND g.kind = 'control_total_gap'
             AND g.business_day BETWEEN :first AND :last
           GROUP BY g.business_day),
       days AS (
           SELECT business_day FROM reported UNION SELECT business_day FROM gaps
           UNION SELECT s.business_day FROM warehouse.partner_scorecard s
           WHERE s.partner_id = :partner AND s.business_day BETWEEN :first AND :last)
       SELECT d.business_day, r.event_id, r.appended_at, r.counts, g.families,
              EXISTS (SELECT 1 FROM ops.load_runs l
                      WHERE l.business_day = d.business_day) AS loaded
       FROM days d LEFT JOIN reported r USING (business_day) LEFT JOIN gaps g USING (business_day)
       ORDER BY d.business_day DESC""")

NOTICES = text(
    """SELECT d.business_day, d.kind, d.severity, d.reference, d.detail
       FROM warehouse.discrepancy d
       WHERE d.partner_id = :partner AND d.business_day BETWEEN :first AND :last
         AND (CAST(:kind AS text) IS NULL OR d.kind = :kind)
       ORDER BY d.business_day DESC,
                array_position(ARRAY['error', 'warning', 'info'], d.severity), d.kind,
                d.reference
       LIMIT :limit OFFSET :offset""")

# The partner's sync feed: the version of its last change and how far the relay published it.
FEED_STATE = text(
    """SELECT s.last_version, coalesce(r.relayed_version, 0) AS published_version
       FROM ops.feed_subscriber s
       LEFT JOIN ops.feed_relay r ON r.subscriber = s.subscriber
       WHERE s.subscriber = :partner AND s.slices <> '{}'""")

# -- agency pages -------------------------------------------------------------------------

# Rows of the district the page is for (and its retired predecessors), read as that district's
# agency: the table policies apply as well, so an agency never gets another district's rows.
IN_DISTRICT = ("district_code IN (SELECT a.district_code FROM warehouse.agency_district a"
               " WHERE a.agency = :agency)")

CERTIFICATES_BY_OCCUPATION = text(
    f"""SELECT c.occupation_code, o.name_zh, o.name_en, c.certificate_type, c.level,
              count(*) FILTER (WHERE c.status = 'in_force') AS in_force,
              count(*) FILTER (WHERE c.status = 'revoked') AS revoked
       FROM warehouse.fact_certificate c
       LEFT JOIN warehouse.dim_occupation o ON o.code = c.occupation_code
       WHERE c.{IN_DISTRICT} AND c.business_day BETWEEN :first AND :last
       GROUP BY c.occupation_code, o.name_zh, o.name_en, c.certificate_type, c.level
       ORDER BY c.occupation_code NULLS LAST, c.certificate_type, c.level""")
EVALUATIONS_BY_OCCUPATION = text(
    f"""SELECT v.occupation_code, o.name_zh, o.name_en, v.level,
              count(*) FILTER (WHERE v.result = 'pass') AS passed,
              count(*) FILTER (WHERE v.result <> 'pass') AS failed
       FROM warehouse.fact_evaluation v
       LEFT JOIN warehouse.dim_occupation o ON o.code = v.occupation_code
       WHERE v.{IN_DISTRICT} AND v.business_day BETWEEN :first AND :last
       GROUP BY v.occupation_code, o.name_zh, o.name_en, v.level
       ORDER BY v.occupation_code, v.level""")
SUBSIDIES_BY_OCCUPATION = text(
    f"""SELECT s.occupation_code, o.name_zh, o.name_en, s.certificate_type, s.level,
              count(*) FILTER (WHERE s.eligible) AS eligible,
              count(*) FILTER (WHERE NOT s.eligible) AS not_eligible,
              coalesce(sum(s.amount_yuan) FILTER (WHERE s.eligible), 0) AS amount_yuan
       FROM warehouse.fact_subsidy_eligibility s
       LEFT JOIN warehouse.dim_occupation o ON o.code = s.occupation_code
       WHERE s.{IN_DISTRICT} AND s.business_day BETWEEN :first AND :last
       GROUP BY s.occupation_code, o.name_zh, o.name_en, s.certificate_type, s.level
       ORDER BY s.occupation_code NULLS LAST, s.certificate_type, s.level""")
SUBSIDY_DECISIONS = text(
    f"""SELECT s.reason, count(*) AS certificates,
              coalesce(sum(s.amount_yuan), 0) AS amount_yuan
       FROM warehouse.fact_subsidy_eligibility s
       WHERE s.{IN_DISTRICT} AND s.business_day BETWEEN :first AND :last
       GROUP BY s.reason ORDER BY s.reason""")
DISTRICT_DAYS = text(
    f"""SELECT d::date AS business_day,
              (SELECT count(*) FROM warehouse.fact_certificate c
               WHERE c.{IN_DISTRICT} AND c.business_day = d::date) AS certificates,
              (SELECT count(*) FROM warehouse.fact_evaluation v
               WHERE v.{IN_DISTRICT} AND v.business_day = d::date) AS evaluations,
              (SELECT coalesce(sum(s.amount_yuan), 0) FROM warehouse.fact_subsidy_eligibility s
               WHERE s.{IN_DISTRICT} AND s.business_day = d::date AND s.eligible)
                  AS subsidy_yuan
       FROM generate_series(CAST(:first AS date), CAST(:last AS date), interval '1 day') AS d
       ORDER BY d""")
DISTRICT_LATEST_DAY = text(
    f"""SELECT max(c.business_day) FROM warehouse.fact_certificate c WHERE c.{IN_DISTRICT}""")

# Drill-down: one fact a row, the learner only as its masked display forms.
_LEARNER = ("e.data->'learner'->>'id_masked' AS id_masked,"
            " e.data->'learner'->>'name_masked' AS name_masked")
_FACT_FILTER = """
         AND (CAST(:occupation AS text) IS NULL OR {t}.occupation_code = :occupation)
         AND (CAST(:level AS smallint) IS NULL OR {t}.level = :level)"""

CERTIFICATE_RECORDS = text(
    f"""SELECT c.business_day, c.certificate_number, c.certificate_type, c.occupation_code,
              c.level, c.status, c.issued_at, c.revoked_at, c.partner_id, c.district_code,
              {_LEARNER}
       FROM warehouse.fact_certificate c
       LEFT JOIN staging.events e ON e.partner_id = c.partner_id AND e.event_id = c.event_id
       WHERE c.{IN_DISTRICT} AND c.business_day BETWEEN :first AND :last
         {_FACT_FILTER.format(t="c")}
       ORDER BY c.business_day DESC, c.certificate_number
       LIMIT :limit OFFSET :offset""")
EVALUATION_RECORDS = text(
    f"""SELECT v.business_day, v.evaluation_id, v.occupation_code, v.level, v.theory_score,
              v.practical_score, v.result, v.evaluated_at, v.corrections, v.partner_id,
              v.district_code, {_LEARNER}
       FROM warehouse.fact_evaluation v
       LEFT JOIN staging.events e ON e.partner_id = v.partner_id AND e.event_id = v.event_id
       WHERE v.{IN_DISTRICT} AND v.business_day BETWEEN :first AND :last
         {_FACT_FILTER.format(t="v")}
       ORDER BY v.business_day DESC, v.partner_id, v.evaluation_id
       LIMIT :limit OFFSET :offset""")
SUBSIDY_RECORDS = text(
    f"""SELECT s.business_day, s.certificate_number, s.certificate_type, s.occupation_code,
              s.level, s.eligible, s.reason, s.amount_yuan, s.issued_day, s.partner_id,
              s.district_code, {_LEARNER}
       FROM warehouse.fact_subsidy_eligibility s
       LEFT JOIN warehouse.fact_certificate c
              ON c.certificate_number = s.certificate_number AND c.person = s.person
       LEFT JOIN staging.events e ON e.partner_id = c.partner_id AND e.event_id = c.event_id
       WHERE s.{IN_DISTRICT} AND s.business_day BETWEEN :first AND :last
         {_FACT_FILTER.format(t="s")}
       ORDER BY s.business_day DESC, s.certificate_number
       LIMIT :limit OFFSET :offset""")

# -- operator pages -----------------------------------------------------------------------

# Where the consumers stand on each partition, and when each last moved: they update it with
# every batch they land, so freshness comes from this small table, not a scan of the events.
CONSUMER_POSITIONS = text(
    """SELECT o.topic, o.partition, o.next_offset, o.updated_at
       FROM staging.consumer_offsets o WHERE o.group_id = :group ORDER BY 1, 2""")
LAST_LOADS = text(
    """SELECT r.business_day, r.run_id, min(r.loaded_at) AS loaded_at,
              sum(r.rows_loaded) AS rows_loaded
       FROM ops.load_runs r
       GROUP BY r.business_day, r.run_id
       ORDER BY min(r.loaded_at) DESC LIMIT :limit""")
VALIDATION_FAILURES = text(
    """SELECT v.business_day, v.run_id, v.check_name, v.expectation, v.severity,
              v.element_count, v.unexpected_count, v.validated_at
       FROM ops.validation_results v
       WHERE NOT v.success AND v.business_day >= CAST(:since AS date)
       ORDER BY v.business_day DESC, v.validated_at DESC, v.check_name LIMIT :limit""")
REFUSALS_TODAY = text(
    """SELECT r.partner_id, count(*) AS refused FROM staging.rejected r
       WHERE r.append_day = :day GROUP BY r.partner_id ORDER BY r.partner_id""")
ERROR_DISCREPANCIES = text(
    """SELECT d.business_day, count(*) AS errors FROM warehouse.discrepancy d
       WHERE d.severity = 'error' AND d.business_day >= CAST(:since AS date)
       GROUP BY d.business_day ORDER BY d.business_day DESC""")

# Airflow's metadata database (read with its own login, no scope: no warehouse rows there).
# Latest asked for first (triggered, or due), not latest night: a rerun of an earlier night
# is the news.
NIGHTLY_RUNS = text(
    """SELECT r.run_id, r.run_type, r.state, r.logical_date, r.start_date, r.end_date,
              r.conf->>'business_day' AS business_day,
              (SELECT string_agg(t.task_id, ',' ORDER BY t.task_id) FROM task_instance t
               WHERE t.dag_id = r.dag_id AND t.run_id = r.run_id
                 AND t.state IN ('failed', 'upstream_failed')) AS failed_tasks
       FROM dag_run r WHERE r.dag_id = :dag_id
       ORDER BY r.run_after DESC LIMIT :limit""")
DAG_PAUSED = text("SELECT is_paused FROM dag WHERE dag_id = :dag_id")
