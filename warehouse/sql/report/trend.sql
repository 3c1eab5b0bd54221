-- Each day of the window: whether it was loaded, its events and its facts.
SELECT w.d::date AS day,
       EXISTS (SELECT 1 FROM ops.load_runs AS r WHERE r.business_day = w.d::date) AS loaded,
       coalesce(s.received, 0)::int AS received, coalesce(s.valid, 0)::int AS valid,
       coalesce(s.rejected, 0)::int AS rejected,
       coalesce(s.duplicates, 0)::int AS duplicates,
       (SELECT count(*) FROM warehouse.fact_enrollment AS f
        WHERE f.business_day = w.d::date)::int AS enrollments,
       (SELECT count(*) FROM warehouse.fact_certificate AS f
        WHERE f.business_day = w.d::date)::int AS certificates,
       (SELECT count(*) FROM warehouse.discrepancy AS g
        WHERE g.business_day = w.d::date AND g.severity = 'error')::int AS discrepancy_errors,
       (SELECT coalesce(sum(e.amount_yuan), 0) FROM warehouse.fact_subsidy_eligibility AS e
        WHERE e.business_day = w.d::date AND e.eligible)::bigint AS subsidy_amount_yuan
FROM generate_series(CAST(:first AS date), CAST(:day AS date), interval '1 day') AS w (d)
LEFT JOIN LATERAL (
    SELECT sum(c.received) AS received, sum(c.valid) AS valid, sum(c.rejected) AS rejected,
           sum(c.duplicates) AS duplicates
    FROM warehouse.partner_scorecard AS c WHERE c.business_day = w.d::date
) AS s ON true
ORDER BY w.d
