-- Every event of those people visible at the horizon, with the business day it is filed under.
-- Quarantined events stay out of the facts: the quarantine table names them.
CREATE TEMP TABLE night_events ON COMMIT DROP AS
SELECT e.partner_id, e.event_id, e.family, e.occurred_at, e.append_day, e.person, e.key_id,
       e.data, warehouse.fact_day(e.occurred_at, e.append_day, :lookback) AS fact_day
FROM night_persons p
JOIN staging.events e ON e.person = p.person
WHERE e.append_day <= :h
  AND NOT EXISTS (SELECT 1 FROM ops.quarantine q
                  WHERE q.partner_id = e.partner_id AND q.event_id = e.event_id)
