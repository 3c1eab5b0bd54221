-- The people whose records tonight restates: everyone an event appended on :d names, and the
-- holders of any certificate number issued in those events (their number became shared).
CREATE TEMP TABLE night_persons ON COMMIT DROP AS
SELECT DISTINCT person FROM staging.events
WHERE append_day = :d AND person IS NOT NULL
UNION
SELECT o.person FROM staging.events c
JOIN staging.events o
  ON o.family = 'certificate.issued'
 AND o.data->>'certificate_number' = c.data->>'certificate_number'
WHERE c.append_day = :d AND c.family = 'certificate.issued' AND o.append_day <= :h
