-- Completion reports; the first of a (partner, enrollment id, person) is the record.
CREATE TEMP TABLE int_completions ON COMMIT DROP AS
SELECT partner_id, data->>'enrollment_id' AS enrollment_id, person, event_id, fact_day,
       (data->>'completed_at')::timestamptz AS completed_at,
       (data->>'hours_attended')::numeric AS hours_attended,
       row_number() OVER report AS report,
       first_value(event_id) OVER report AS first_event_id
FROM night_events WHERE family = 'completion.recorded'
WINDOW report AS (PARTITION BY partner_id, data->>'enrollment_id', person ORDER BY occurred_at, event_id COLLATE "C")
