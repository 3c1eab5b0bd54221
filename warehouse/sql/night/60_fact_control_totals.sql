-- Every control totals message of the restated days, and every one appended on :d: the latest
-- one appended within its day's look-back applies, earlier ones are superseded, and one
-- appended after the look-back is late (too late to check the day against).
INSERT INTO warehouse.fact_control_totals
    (partner_id, event_id, business_day, append_day, appended_at, status, counts)
SELECT partner_id, event_id, business_day, append_day, appended_at, status, counts
FROM (
    SELECT *, CASE
        WHEN NOT in_time THEN 'late'
        WHEN row_number() OVER (PARTITION BY partner_id, business_day, in_time
                                ORDER BY appended_at DESC, event_id COLLATE "C" DESC) = 1
        THEN 'applied'
        ELSE 'superseded' END AS status
    FROM (
        SELECT t.partner_id, t.event_id, (t.data->>'business_day')::date AS business_day,
               t.append_day, t.appended_at, t.data->'counts' AS counts,
               t.append_day <= (t.data->>'business_day')::date + CAST(:lookback AS int)
                   AS in_time
        FROM staging.events t
        WHERE t.family = 'control.totals' AND t.append_day <= :h
          AND t.data->>'business_day' IN (
              SELECT to_char(day, 'YYYY-MM-DD') FROM unnest(CAST(:days AS date[])) AS day
              UNION
              SELECT o.data->>'business_day' FROM staging.events AS o
              WHERE o.append_day = :d AND o.family = 'control.totals')
          AND NOT EXISTS (SELECT 1 FROM ops.quarantine q
                          WHERE q.partner_id = t.partner_id AND q.event_id = t.event_id)
    ) totals
) ranked
WHERE business_day = ANY(:days) OR append_day = :d
