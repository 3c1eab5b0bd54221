INSERT INTO warehouse.dim_partner (partner_id)
SELECT DISTINCT partner_id FROM staging.events WHERE append_day = ANY(:days)
ON CONFLICT DO NOTHING
