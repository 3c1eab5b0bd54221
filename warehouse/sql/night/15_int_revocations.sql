-- Revocations; the first of a certificate's revocations is the one that applies.
CREATE TEMP TABLE int_revocations ON COMMIT DROP AS
SELECT data->>'certificate_number' AS certificate_number, person, partner_id, event_id,
       fact_day, (data->>'revoked_at')::timestamptz AS revoked_at, data->>'reason' AS reason,
       row_number() OVER report AS report,
       first_value(event_id) OVER report AS first_event_id
FROM night_events WHERE family = 'certificate.revoked'
WINDOW report AS (PARTITION BY data->>'certificate_number', person ORDER BY occurred_at, event_id COLLATE "C")
