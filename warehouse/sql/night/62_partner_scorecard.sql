INSERT INTO warehouse.partner_scorecard (
    business_day, partner_id, received, valid, rejected, rejected_by_reason, duplicates,
    late, missing, extra)
SELECT s.day, s.partner_id, sum(s.valid + s.rejected + s.duplicates), sum(s.valid),
    sum(s.rejected),
    (SELECT coalesce(jsonb_object_agg(x.reason_code, x.n ORDER BY x.reason_code), '{}')
     FROM (SELECT r.reason_code, count(*) AS n FROM staging.rejected r
           WHERE r.append_day = s.day AND r.partner_id = s.partner_id
             AND r.replay_outcome IS DISTINCT FROM 'landed' GROUP BY 1) x),
    sum(s.duplicates), sum(s.late),
    (SELECT coalesce(sum((g.detail->>'missing_count')::int), 0) FROM warehouse.discrepancy g
     WHERE g.business_day = s.day AND g.partner_id = s.partner_id
       AND g.kind = 'control_total_gap'),
    (SELECT coalesce(sum((g.detail->>'extra_count')::int), 0) FROM warehouse.discrepancy g
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
