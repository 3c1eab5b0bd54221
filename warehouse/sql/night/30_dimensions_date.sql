INSERT INTO warehouse.dim_date (day, year, month, iso_week, iso_dow)
SELECT d, extract(year FROM d), extract(month FROM d), extract(week FROM d), extract(isodow FROM d)
FROM (SELECT unnest(CAST(:days AS date[])) AS d UNION SELECT DISTINCT fact_day FROM night_events) days
ON CONFLICT DO NOTHING
