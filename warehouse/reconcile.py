"""The night's reconciliation as set-based SQL: which days to restate and what their facts are.

Every statement reads the events whose fact day is being restated (the temporary table
night_events) and looks related events up in staging by indexed keys (person, certificate
number, evaluation or enrollment id), so its cost follows the days restated, not history.

A fact day X is a pure function of the staging rows appended up to min(horizon, X + look-back):
look-ups never see events appended later than that, so reruns and backfills repeat themselves.
"""

from __future__ import annotations

from sqlalchemy import TextClause, text


def _seen(alias: str, day: str) -> str:
    """Staging rows visible when facts of `day` are computed."""
    return f"{alias}.append_day <= least(CAST(:h AS date), {day} + CAST(:lookback AS int))"


RESTATE_DAYS = text(
    """
    WITH appended AS (
        SELECT family, occurred_at, append_day, person, data
        FROM staging.events WHERE append_day = :d)
    SELECT DISTINCT day FROM (
        SELECT CAST(:d AS date) AS day
        UNION ALL SELECT warehouse.fact_day(occurred_at, append_day, :lookback) FROM appended
        UNION ALL SELECT (data->>'business_day')::date FROM appended
                  WHERE family = 'control.totals'
        UNION ALL SELECT warehouse.fact_day(s.occurred_at, s.append_day, :lookback)
                  FROM staging.events s
                  WHERE s.person IN (SELECT person FROM appended WHERE person IS NOT NULL)
                    AND s.append_day BETWEEN CAST(:d AS date) - :lookback AND :d
        UNION ALL SELECT warehouse.fact_day(s.occurred_at, s.append_day, :lookback)
                  FROM staging.events s
                  WHERE s.family = 'certificate.issued'
                    AND s.data->>'certificate_number' IN (
                        SELECT data->>'certificate_number' FROM appended
                        WHERE family = 'certificate.issued')
                    AND s.append_day BETWEEN CAST(:d AS date) - :lookback AND :d
    ) related
    WHERE day BETWEEN CAST(:d AS date) - :lookback AND :d
    ORDER BY day
    """
)

HORIZON = text(
    "SELECT greatest(CAST(:d AS date), max(business_day)) FROM warehouse.load_runs"
)

NIGHT_EVENTS = text(
    """
    CREATE TEMP TABLE night_events ON COMMIT DROP AS
    SELECT e.*, warehouse.fact_day(e.occurred_at, e.append_day, :lookback) AS fact_day
    FROM staging.events e
    WHERE e.append_day BETWEEN :first AND :h
      AND warehouse.fact_day(e.occurred_at, e.append_day, :lookback) = ANY(:days)
      AND NOT EXISTS (SELECT 1 FROM warehouse.quarantine q
                      WHERE q.partner_id = e.partner_id AND q.event_id = e.event_id)
    """
)

FACT_TABLES = (
    "fact_enrollment", "fact_completion", "fact_evaluation", "fact_certificate",
    "fact_subsidy_eligibility", "discrepancy", "partner_scorecard",
)

DIMENSIONS_FROM_DAY: tuple[TextClause, ...] = (
    text("""
        INSERT INTO warehouse.dim_date (day, year, month, iso_week, iso_dow)
        SELECT d, extract(year FROM d), extract(month FROM d), extract(week FROM d),
               extract(isodow FROM d)
        FROM unnest(CAST(:days AS date[])) AS d
        ON CONFLICT DO NOTHING"""),
    text("""
        INSERT INTO warehouse.dim_person (person, key_id)
        SELECT DISTINCT ON (person) person, key_id FROM night_events
        WHERE person IS NOT NULL ORDER BY person, key_id
        ON CONFLICT DO NOTHING"""),
    text("""
        INSERT INTO warehouse.dim_institution (credit_code, name)
        SELECT DISTINCT ON (code) code, name FROM (
            SELECT data->'institution'->>'credit_code' AS code,
                   data->'institution'->>'name' AS name FROM night_events
            WHERE family = 'enrollment.created'
            UNION ALL
            SELECT data->'organisation'->>'credit_code', data->'organisation'->>'name'
            FROM night_events WHERE family IN ('evaluation.recorded', 'certificate.issued')
        ) o ORDER BY code, name
        ON CONFLICT DO NOTHING"""),
    text("""
        INSERT INTO warehouse.dim_partner (partner_id)
        SELECT DISTINCT partner_id FROM night_events
        ON CONFLICT DO NOTHING"""),
)

ENROLLMENTS = text(
    f"""
    INSERT INTO warehouse.fact_enrollment (
        partner_id, enrollment_id, event_id, business_day, person, key_id, occupation_code,
        level, course_id, mode, institution_code, district_code, enrolled_at, status,
        withdrawn_at, withdrawal_reason, canonical_partner_id, canonical_enrollment_id)
    SELECT e.partner_id, e.enrollment_id, e.event_id, e.fact_day, e.person, e.key_id,
           e.occupation_code, e.level, e.course_id, e.mode, e.institution_code,
           e.district_code, e.enrolled_at,
           CASE WHEN w.withdrawn_at IS NULL THEN 'active' ELSE 'withdrawn' END,
           w.withdrawn_at, w.reason,
           coalesce(c.partner_id, e.partner_id), coalesce(c.enrollment_id, e.enrollment_id)
    FROM (
        SELECT DISTINCT ON (partner_id, data->>'enrollment_id')
            partner_id, data->>'enrollment_id' AS enrollment_id, event_id, fact_day, person,
            key_id, data->'course'->>'occupation_code' AS occupation_code,
            (data->'course'->>'level')::smallint AS level, data->'course'->>'course_id'
            AS course_id, data->'course'->>'mode' AS mode,
            data->'institution'->>'credit_code' AS institution_code,
            data->>'district_code' AS district_code,
            (data->>'enrolled_at')::timestamptz AS enrolled_at
        FROM night_events WHERE family = 'enrollment.created'
        ORDER BY partner_id, data->>'enrollment_id', occurred_at, event_id
    ) e
    LEFT JOIN LATERAL (
        SELECT (w.data->>'withdrawn_at')::timestamptz AS withdrawn_at, w.data->>'reason' AS reason
        FROM staging.events w
        WHERE w.family = 'enrollment.withdrawn' AND w.partner_id = e.partner_id
          AND w.data->>'enrollment_id' = e.enrollment_id AND {_seen("w", "e.fact_day")}
        ORDER BY w.occurred_at, w.event_id LIMIT 1
    ) w ON true
    -- The same training reported by another partner: the earliest report is canonical.
    LEFT JOIN LATERAL (
        SELECT o.partner_id, o.data->>'enrollment_id' AS enrollment_id
        FROM staging.events o
        WHERE o.person = e.person AND o.family = 'enrollment.created'
          AND o.partner_id <> e.partner_id AND {_seen("o", "e.fact_day")}
          AND o.data->'course'->>'occupation_code' = e.occupation_code
          AND (o.data->'course'->>'level')::smallint = e.level
          AND abs(extract(epoch FROM (o.data->>'enrolled_at')::timestamptz - e.enrolled_at))
              <= :duplicate_seconds
          AND ((o.data->>'enrolled_at')::timestamptz, o.partner_id, o.data->>'enrollment_id')
              < (e.enrolled_at, e.partner_id, e.enrollment_id)
        ORDER BY (o.data->>'enrolled_at')::timestamptz, o.partner_id, o.data->>'enrollment_id'
        LIMIT 1
    ) c ON true
    ON CONFLICT (partner_id, enrollment_id) DO NOTHING
    """
)

COMPLETIONS = text(
    f"""
    INSERT INTO warehouse.fact_completion (
        partner_id, enrollment_id, event_id, business_day, person, completed_at,
        hours_attended, enrollment_found)
    SELECT DISTINCT ON (e.partner_id, e.data->>'enrollment_id')
        e.partner_id, e.data->>'enrollment_id', e.event_id, e.fact_day, e.person,
        (e.data->>'completed_at')::timestamptz, (e.data->>'hours_attended')::numeric,
        EXISTS (SELECT 1 FROM staging.events n
                WHERE n.family = 'enrollment.created' AND n.partner_id = e.partner_id
                  AND n.data->>'enrollment_id' = e.data->>'enrollment_id'
                  AND {_seen("n", "e.fact_day")})
    FROM night_events e WHERE e.family = 'completion.recorded'
    ORDER BY e.partner_id, e.data->>'enrollment_id', e.occurred_at, e.event_id
    ON CONFLICT DO NOTHING
    """
)


def _latest_correction(field: str, cast: str) -> str:
    return (f"((array_agg(x.data->>'{field}' ORDER BY x.occurred_at DESC, x.event_id DESC)"
            f" FILTER (WHERE x.data->>'{field}' IS NOT NULL))[1])::{cast} AS {field}")


EVALUATIONS = text(
    f"""
    INSERT INTO warehouse.fact_evaluation (
        partner_id, evaluation_id, event_id, business_day, person, occupation_code, level,
        theory_score, practical_score, result, evaluated_at, organisation_code, district_code,
        enrollment_id, work_type, corrections, last_corrected_at)
    SELECT DISTINCT ON (e.partner_id, e.data->>'evaluation_id')
        e.partner_id, e.data->>'evaluation_id', e.event_id, e.fact_day, e.person,
        coalesce(c.occupation_code, e.data->>'occupation_code'),
        coalesce(c.level, (e.data->>'level')::smallint),
        coalesce(c.theory_score, (e.data->>'theory_score')::numeric),
        coalesce(c.practical_score, (e.data->>'practical_score')::numeric),
        coalesce(c.result, e.data->>'result'),
        (e.data->>'evaluated_at')::timestamptz, e.data->'organisation'->>'credit_code',
        e.data->>'district_code', e.data->>'enrollment_id', e.data->>'work_type',
        c.corrections, c.last_corrected_at
    FROM night_events e
    -- Corrections apply field by field, the latest one winning.
    CROSS JOIN LATERAL (
        SELECT count(*) AS corrections, max(x.occurred_at) AS last_corrected_at,
               {_latest_correction("occupation_code", "text")},
               {_latest_correction("level", "smallint")},
               {_latest_correction("theory_score", "numeric")},
               {_latest_correction("practical_score", "numeric")},
               {_latest_correction("result", "text")}
        FROM staging.events x
        WHERE x.family = 'evaluation.corrected' AND x.partner_id = e.partner_id
          AND x.data->>'evaluation_id' = e.data->>'evaluation_id' AND {_seen("x", "e.fact_day")}
    ) c
    WHERE e.family = 'evaluation.recorded'
    ORDER BY e.partner_id, e.data->>'evaluation_id', e.occurred_at, e.event_id
    ON CONFLICT DO NOTHING
    """
)


def _effective_result(evaluation: str, day: str) -> str:
    """An evaluation's result once its corrections are applied."""
    return f"""coalesce((
        SELECT x.data->>'result' FROM staging.events x
        WHERE x.family = 'evaluation.corrected' AND x.partner_id = {evaluation}.partner_id
          AND x.data->>'evaluation_id' = {evaluation}.data->>'evaluation_id'
          AND x.data->>'result' IS NOT NULL AND {_seen("x", day)}
        ORDER BY x.occurred_at DESC, x.event_id DESC LIMIT 1), {evaluation}.data->>'result')"""


CERTIFICATES = text(
    f"""
    INSERT INTO warehouse.fact_certificate (
        certificate_number, person, partner_id, event_id, business_day, certificate_type,
        scheme, occupation_code, level, issued_at, evaluation_id, organisation_code,
        district_code, evaluation_level, paired_certificate_number, status, revoked_at,
        revocation_reason, passing_evaluation, number_shared)
    SELECT c.number, c.person, c.partner_id, c.event_id, c.fact_day, c.certificate_type,
        c.scheme, c.occupation_code, c.level, c.issued_at, c.evaluation_id,
        c.organisation_code, v.district_code, v.level, c.paired,
        CASE WHEN r.revoked_at IS NULL THEN 'in_force' ELSE 'revoked' END,
        r.revoked_at, r.reason,
        coalesce(v.result = 'pass', false) OR EXISTS (
            SELECT 1 FROM staging.events p
            WHERE p.person = c.person AND p.family = 'evaluation.recorded'
              AND p.data->>'occupation_code' = c.occupation_code
              AND (p.data->>'level')::smallint = c.level AND {_seen("p", "c.fact_day")}
              AND {_effective_result("p", "c.fact_day")} = 'pass'),
        EXISTS (SELECT 1 FROM staging.events s
                WHERE s.family = 'certificate.issued'
                  AND s.data->>'certificate_number' = c.number AND s.person <> c.person
                  AND {_seen("s", "c.fact_day")})
    FROM (
        SELECT DISTINCT ON (data->>'certificate_number', person)
            data->>'certificate_number' AS number, person, partner_id, event_id, fact_day,
            data->>'certificate_type' AS certificate_type, data->>'scheme' AS scheme,
            data->>'occupation_code' AS occupation_code, (data->>'level')::smallint AS level,
            (data->>'issued_at')::timestamptz AS issued_at,
            data->>'evaluation_id' AS evaluation_id,
            data->'organisation'->>'credit_code' AS organisation_code,
            data->>'paired_certificate_number' AS paired
        FROM night_events WHERE family = 'certificate.issued'
        ORDER BY data->>'certificate_number', person, occurred_at, event_id
    ) c
    LEFT JOIN LATERAL (
        SELECT (r.data->>'revoked_at')::timestamptz AS revoked_at, r.data->>'reason' AS reason
        FROM staging.events r
        WHERE r.family = 'certificate.revoked' AND r.data->>'certificate_number' = c.number
          AND r.person = c.person AND {_seen("r", "c.fact_day")}
        ORDER BY r.occurred_at, r.event_id LIMIT 1
    ) r ON true
    LEFT JOIN LATERAL (
        SELECT v.data->>'district_code' AS district_code, (v.data->>'level')::smallint AS level,
               {_effective_result("v", "c.fact_day")} AS result
        FROM staging.events v
        WHERE v.family = 'evaluation.recorded' AND v.partner_id = c.partner_id
          AND v.data->>'evaluation_id' = c.evaluation_id AND {_seen("v", "c.fact_day")}
        ORDER BY v.occurred_at, v.event_id LIMIT 1
    ) v ON true
    ON CONFLICT DO NOTHING
    """
)

SUBSIDIES = text(
    f"""
    INSERT INTO warehouse.fact_subsidy_eligibility (
        certificate_number, person, business_day, partner_id, district_code, occupation_code,
        level, certificate_type, issued_day, scheme, eligible, reason, amount_yuan,
        first_claim_number)
    SELECT f.certificate_number, f.person, f.business_day, f.partner_id, f.district_code,
        f.occupation_code, f.level, f.certificate_type, f.issued_day, :scheme,
        d.reason = 'eligible', d.reason,
        CASE WHEN d.reason = 'eligible' THEN rule.amount_yuan END, earlier.number
    FROM (SELECT *, (issued_at AT TIME ZONE 'Asia/Shanghai')::date AS issued_day
          FROM warehouse.fact_certificate WHERE business_day = ANY(:days)) f
    -- Once per person, occupation and level: the earliest certificate in force whose number
    -- is one person's only holds the claim.
    LEFT JOIN LATERAL (
        SELECT s.data->>'certificate_number' AS number, s.partner_id,
               s.data->>'evaluation_id' AS evaluation_id
        FROM staging.events s
        WHERE s.person = f.person AND s.family = 'certificate.issued'
          AND {_seen("s", "f.business_day")}
          AND s.data->>'certificate_type' = f.certificate_type
          AND s.data->>'occupation_code' IS NOT DISTINCT FROM f.occupation_code
          AND (s.data->>'level')::smallint IS NOT DISTINCT FROM f.level
          AND ((s.data->>'issued_at')::timestamptz, s.data->>'certificate_number')
              < (f.issued_at, f.certificate_number)
          AND NOT EXISTS (
              SELECT 1 FROM staging.events r
              WHERE r.family = 'certificate.revoked'
                AND r.data->>'certificate_number' = s.data->>'certificate_number'
                AND r.person = s.person AND {_seen("r", "f.business_day")})
          AND NOT EXISTS (
              SELECT 1 FROM staging.events o
              WHERE o.family = 'certificate.issued'
                AND o.data->>'certificate_number' = s.data->>'certificate_number'
                AND o.person <> s.person AND {_seen("o", "f.business_day")})
        ORDER BY (s.data->>'issued_at')::timestamptz, s.data->>'certificate_number' LIMIT 1
    ) earlier ON true
    LEFT JOIN LATERAL (
        SELECT r.amount_yuan FROM warehouse.dim_subsidy_rule r
        WHERE r.scheme = :scheme AND r.certificate_type = f.certificate_type
          AND r.level IS NOT DISTINCT FROM f.level AND f.issued_day >= r.valid_from
          AND (r.valid_to IS NULL OR f.issued_day < r.valid_to)
        ORDER BY r.valid_from DESC LIMIT 1
    ) rule ON true
    CROSS JOIN LATERAL (SELECT CASE
        WHEN f.status = 'revoked' THEN 'revoked'
        WHEN f.number_shared THEN 'shared_number'
        WHEN earlier.number IS NOT NULL AND earlier.partner_id = f.partner_id
             AND earlier.evaluation_id = f.evaluation_id THEN 'paired_certificate'
        WHEN earlier.number IS NOT NULL THEN 'already_claimed'
        WHEN rule.amount_yuan IS NULL THEN 'no_rule'
        ELSE 'eligible' END AS reason) d
    """
)

DISCREPANCIES: tuple[TextClause, ...] = (
    text("""
        INSERT INTO warehouse.discrepancy
            (business_day, kind, reference, severity, partner_id, detail)
        SELECT business_day, 'semantic_duplicate', partner_id || ':' || enrollment_id, 'info',
               partner_id, jsonb_build_object(
                   'canonical', canonical_partner_id || ':' || canonical_enrollment_id)
        FROM warehouse.fact_enrollment
        WHERE business_day = ANY(:days)
          AND (canonical_partner_id, canonical_enrollment_id) <> (partner_id, enrollment_id)
        ON CONFLICT DO NOTHING"""),
    text("""
        INSERT INTO warehouse.discrepancy
            (business_day, kind, reference, severity, partner_id, detail)
        SELECT business_day, 'completion_without_enrollment', partner_id || ':' || enrollment_id,
               'warning', partner_id, jsonb_build_object('event_id', event_id)
        FROM warehouse.fact_completion
        WHERE business_day = ANY(:days) AND NOT enrollment_found
        ON CONFLICT DO NOTHING"""),
    text("""
        INSERT INTO warehouse.discrepancy
            (business_day, kind, reference, severity, partner_id, detail)
        SELECT business_day, kind, certificate_number, 'error', partner_id, detail
        FROM warehouse.fact_certificate f
        CROSS JOIN LATERAL (VALUES
            ('certificate_without_passing_evaluation', NOT f.passing_evaluation,
             jsonb_build_object('evaluation_id', f.evaluation_id, 'event_id', f.event_id)),
            ('level_mismatch', f.evaluation_level IS DISTINCT FROM f.level
                               AND f.evaluation_level IS NOT NULL,
             jsonb_build_object('certificate_level', f.level,
                                'evaluation_level', f.evaluation_level,
                                'evaluation_id', f.evaluation_id)),
            ('certificate_number_conflict', f.number_shared,
             jsonb_build_object('event_id', f.event_id))
        ) AS found(kind, raised, detail)
        WHERE f.business_day = ANY(:days) AND found.raised
        ON CONFLICT DO NOTHING"""),
    text("""
        INSERT INTO warehouse.discrepancy
            (business_day, kind, reference, severity, partner_id, detail)
        SELECT s.business_day, 'double_claim', s.certificate_number, 'error', s.partner_id,
               jsonb_build_object(
                   'first_certificate', s.first_claim_number,
                   'first_partner', first.partner_id, 'first_district', first.district_code,
                   'district', s.district_code, 'occupation_code', s.occupation_code,
                   'level', s.level)
        FROM warehouse.fact_subsidy_eligibility s
        LEFT JOIN LATERAL (
            SELECT partner_id, district_code FROM warehouse.fact_certificate c
            WHERE c.certificate_number = s.first_claim_number AND c.person = s.person
        ) first ON true
        WHERE s.business_day = ANY(:days) AND s.reason = 'already_claimed'
        ON CONFLICT DO NOTHING"""),
    # Corrections, revocations and withdrawals whose record sits in a day already closed.
    text("""
        INSERT INTO warehouse.discrepancy
            (business_day, kind, reference, severity, partner_id, detail)
        SELECT e.fact_day, 'restatement_outside_lookback', e.partner_id || ':' || e.event_id,
               'warning', e.partner_id,
               jsonb_build_object('family', e.family, 'record_day', t.business_day)
        FROM night_events e
        JOIN LATERAL (
            SELECT business_day FROM warehouse.fact_enrollment f
            WHERE e.family = 'enrollment.withdrawn' AND f.partner_id = e.partner_id
              AND f.enrollment_id = e.data->>'enrollment_id'
            UNION ALL
            SELECT business_day FROM warehouse.fact_evaluation f
            WHERE e.family = 'evaluation.corrected' AND f.partner_id = e.partner_id
              AND f.evaluation_id = e.data->>'evaluation_id'
            UNION ALL
            SELECT business_day FROM warehouse.fact_certificate f
            WHERE e.family = 'certificate.revoked' AND f.person = e.person
              AND f.certificate_number = e.data->>'certificate_number'
        ) t ON t.business_day + CAST(:lookback AS int) < e.append_day
        ON CONFLICT DO NOTHING"""),
    # Control totals against what landed the same append day, located to event ids.
    text("""
        WITH totals AS (
            SELECT DISTINCT ON (t.partner_id, (t.data->>'business_day')::date)
                t.partner_id, (t.data->>'business_day')::date AS day, t.data
            FROM staging.events t
            WHERE t.family = 'control.totals' AND t.append_day BETWEEN :first AND :h
              AND (t.data->>'business_day')::date = ANY(:days)
              AND t.append_day <= (t.data->>'business_day')::date + CAST(:lookback AS int)
            ORDER BY t.partner_id, (t.data->>'business_day')::date, t.appended_at DESC,
                     t.event_id DESC),
        reported AS (
            SELECT t.partner_id, t.day, f.family, f.counted::int AS counted,
                   t.data->'digests'->>f.family AS digest, t.data->'event_ids'->f.family AS ids
            FROM totals t
            CROSS JOIN LATERAL jsonb_each_text(t.data->'counts') AS f(family, counted)),
        compared AS (
            SELECT r.*, l.ids AS landed_ids, coalesce(cardinality(l.ids), 0) AS landed
            FROM reported r
            CROSS JOIN LATERAL (
                SELECT array_agg(e.event_id ORDER BY e.event_id COLLATE "C") AS ids
                FROM staging.events e
                WHERE e.partner_id = r.partner_id AND e.family = r.family AND e.sent_day = r.day
                  AND e.append_day BETWEEN r.day - 1 AND least(CAST(:h AS date),
                                                               r.day + CAST(:lookback AS int))
            ) l),
        located AS (
            SELECT c.*,
                (SELECT coalesce(jsonb_agg(x ORDER BY x), '[]')
                 FROM jsonb_array_elements_text(c.ids) x
                 WHERE x <> ALL(coalesce(c.landed_ids, '{}'))) AS missing,
                (SELECT coalesce(jsonb_agg(x ORDER BY x), '[]') FROM unnest(c.landed_ids) x
                 WHERE c.ids IS NOT NULL AND NOT c.ids ? x) AS extra
            FROM compared c
            WHERE c.counted <> c.landed OR c.digest <> encode(sha256(convert_to(
                coalesce(array_to_string(c.landed_ids, E'\\n'), ''), 'UTF8')), 'hex'))
        INSERT INTO warehouse.discrepancy
            (business_day, kind, reference, severity, partner_id, detail)
        SELECT day, 'control_total_gap', partner_id || ':' || family,
               CASE WHEN counted > landed OR jsonb_array_length(missing) > 0 THEN 'error'
                    ELSE 'warning' END,
               partner_id, jsonb_build_object(
                   'family', family, 'counted', counted, 'landed', landed,
                   'missing', missing, 'extra', extra,
                   'missing_count', CASE WHEN ids IS NULL THEN greatest(counted - landed, 0)
                                         ELSE jsonb_array_length(missing) END,
                   'extra_count', CASE WHEN ids IS NULL THEN greatest(landed - counted, 0)
                                       ELSE jsonb_array_length(extra) END)
        FROM located
        ON CONFLICT DO NOTHING"""),
)

SCORECARD = text(
    """
    INSERT INTO warehouse.partner_scorecard (
        business_day, partner_id, received, valid, rejected, rejected_by_reason, duplicates,
        late, missing, extra)
    SELECT s.day, s.partner_id, sum(s.valid + s.rejected + s.duplicates), sum(s.valid),
        sum(s.rejected),
        (SELECT coalesce(jsonb_object_agg(reason_code, n ORDER BY reason_code), '{}')
         FROM (SELECT reason_code, count(*) AS n FROM staging.rejected r
               WHERE r.append_day = s.day AND r.partner_id = s.partner_id
                 AND r.replay_outcome IS DISTINCT FROM 'landed' GROUP BY 1) x),
        sum(s.duplicates), sum(s.late),
        (SELECT coalesce(sum((detail->>'missing_count')::int), 0) FROM warehouse.discrepancy g
         WHERE g.business_day = s.day AND g.partner_id = s.partner_id
           AND g.kind = 'control_total_gap'),
        (SELECT coalesce(sum((detail->>'extra_count')::int), 0) FROM warehouse.discrepancy g
         WHERE g.business_day = s.day AND g.partner_id = s.partner_id
           AND g.kind = 'control_total_gap')
    FROM (
        SELECT append_day AS day, partner_id, count(*) AS valid, 0 AS rejected, 0 AS duplicates,
               count(*) FILTER (WHERE family <> 'control.totals'
                   AND (occurred_at AT TIME ZONE 'Asia/Shanghai')::date < append_day) AS late
        FROM staging.events WHERE append_day = ANY(:days) GROUP BY 1, 2
        UNION ALL
        SELECT append_day, partner_id, 0, count(*), 0, 0
        FROM staging.rejected WHERE append_day = ANY(:days)
          -- A refusal a replay later landed counts once, as valid.
          AND replay_outcome IS DISTINCT FROM 'landed' GROUP BY 1, 2
        UNION ALL
        SELECT append_day, partner_id, 0, 0, count(*), 0
        FROM staging.redeliveries WHERE append_day = ANY(:days) GROUP BY 1, 2
    ) s
    GROUP BY s.day, s.partner_id
    """
)
