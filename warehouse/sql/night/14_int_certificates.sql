-- Certificate reports; the first report of a (certificate number, person) is the record.
CREATE TEMP TABLE int_certificates ON COMMIT DROP AS
SELECT data->>'certificate_number' AS certificate_number, person, partner_id, event_id,
       fact_day, data->>'certificate_type' AS certificate_type, data->>'scheme' AS scheme,
       data->>'occupation_code' AS occupation_code, (data->>'level')::smallint AS level,
       (data->>'issued_at')::timestamptz AS issued_at, data->>'evaluation_id' AS evaluation_id,
       data->'organisation'->>'credit_code' AS organisation_code,
       data->>'paired_certificate_number' AS paired_certificate_number,
       row_number() OVER report AS report,
       first_value(event_id) OVER report AS first_event_id
FROM night_events WHERE family = 'certificate.issued'
WINDOW report AS (PARTITION BY data->>'certificate_number', person ORDER BY occurred_at, event_id COLLATE "C")
