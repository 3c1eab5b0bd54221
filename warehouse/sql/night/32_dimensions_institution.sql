INSERT INTO warehouse.dim_institution (credit_code, name)
SELECT DISTINCT ON (code) code, name FROM (
    SELECT data->'institution'->>'credit_code' AS code,
           data->'institution'->>'name' AS name FROM night_events
    WHERE family = 'enrollment.created'
    UNION ALL
    SELECT data->'organisation'->>'credit_code', data->'organisation'->>'name'
    FROM night_events WHERE family IN ('evaluation.recorded', 'certificate.issued')
) o ORDER BY code, name
ON CONFLICT DO NOTHING
