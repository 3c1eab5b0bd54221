-- Enrollment reports; the first report of a (partner, enrollment id, person) is the record.
CREATE TEMP TABLE int_enrollments ON COMMIT DROP AS
SELECT partner_id, data->>'enrollment_id' AS enrollment_id, person, event_id, fact_day, key_id,
       data->'course'->>'occupation_code' AS occupation_code,
       (data->'course'->>'level')::smallint AS level,
       data->'course'->>'course_id' AS course_id, data->'course'->>'mode' AS mode,
       data->'institution'->>'credit_code' AS institution_code,
       data->>'district_code' AS district_code,
       (data->>'enrolled_at')::timestamptz AS enrolled_at,
       row_number() OVER report AS report,
       first_value(event_id) OVER report AS first_event_id
FROM night_events WHERE family = 'enrollment.created'
WINDOW report AS (PARTITION BY partner_id, data->>'enrollment_id', person ORDER BY occurred_at, event_id COLLATE "C")
