-- Each restated day's applied control totals against the events the partner sent that day
-- and that landed within the look-back, located to event ids when the totals list them; and
-- control totals that arrived too late to be checked.
WITH applied AS (
    SELECT a.partner_id, a.business_day AS day, a.event_id, t.data
    FROM warehouse.fact_control_totals a
    JOIN staging.events t ON t.partner_id = a.partner_id AND t.event_id = a.event_id
    WHERE a.business_day = ANY(:days) AND a.status = 'applied'),
reported AS (
    SELECT a.partner_id, a.day, a.event_id, f.family, f.counted::int AS counted,
           a.data->'digests'->>f.family AS digest, a.data->'event_ids'->f.family AS ids
    FROM applied a
    CROSS JOIN LATERAL jsonb_each_text(a.data->'counts') AS f(family, counted)),
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
        (SELECT coalesce(jsonb_agg(x ORDER BY x COLLATE "C"), '[]')  -- noqa: RF02
         FROM jsonb_array_elements_text(c.ids) x
         WHERE x <> ALL(coalesce(c.landed_ids, '{}'))) AS missing,
        (SELECT coalesce(jsonb_agg(x ORDER BY x COLLATE "C"), '[]') FROM unnest(c.landed_ids) x
         WHERE c.ids IS NOT NULL AND NOT c.ids ? x) AS extra
    FROM compared c
    WHERE c.counted <> c.landed OR c.digest <> encode(sha256(convert_to(
        coalesce(array_to_string(c.landed_ids, E'\n'), ''), 'UTF8')), 'hex'))
INSERT INTO warehouse.discrepancy
    (business_day, kind, reference, severity, partner_id, event_id, person, detail)
SELECT day, 'control_total_gap', family,
       CASE WHEN counted > landed OR jsonb_array_length(missing) > 0 THEN 'error'
            ELSE 'warning' END,
       partner_id, event_id, NULL, jsonb_build_object(
           'family', family, 'counted', counted, 'landed', landed,
           'missing', missing, 'extra', extra,
           'missing_count', CASE WHEN ids IS NULL THEN greatest(counted - landed, 0)
                                 ELSE jsonb_array_length(missing) END,
           'extra_count', CASE WHEN ids IS NULL THEN greatest(landed - counted, 0)
                               ELSE jsonb_array_length(extra) END)
FROM located
UNION ALL
SELECT append_day, 'control_totals_late', business_day::text, 'warning', partner_id, event_id,
       NULL, jsonb_build_object('business_day', business_day, 'append_day', append_day)
FROM warehouse.fact_control_totals
WHERE append_day = ANY(:days) AND status = 'late'
