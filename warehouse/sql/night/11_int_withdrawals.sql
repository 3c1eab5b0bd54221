-- Withdrawals; the first of a record's withdrawals is the one that applies.
CREATE TEMP TABLE int_withdrawals ON COMMIT DROP AS
SELECT partner_id, data->>'enrollment_id' AS enrollment_id, person, event_id, fact_day,
       (data->>'withdrawn_at')::timestamptz AS withdrawn_at, data->>'reason' AS reason,
       row_number() OVER report AS report,
       first_value(event_id) OVER report AS first_event_id
FROM night_events WHERE family = 'enrollment.withdrawn'
WINDOW report AS (PARTITION BY partner_id, data->>'enrollment_id', person ORDER BY occurred_at, event_id COLLATE "C")
