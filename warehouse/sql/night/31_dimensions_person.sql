INSERT INTO warehouse.dim_person (person, key_id)
SELECT DISTINCT ON (person) person, key_id FROM night_events
WHERE person IS NOT NULL ORDER BY person, key_id
ON CONFLICT DO NOTHING
