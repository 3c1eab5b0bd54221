-- Each partner's figures for the day, with its name and role.
SELECT s.partner_id, p.name, p.role, s.received, s.valid, s.rejected, s.duplicates, s.late,
       s.missing, s.extra, s.rejected_by_reason
FROM warehouse.partner_scorecard AS s
LEFT JOIN warehouse.dim_partner AS p ON p.partner_id = s.partner_id
WHERE s.business_day = :day
ORDER BY s.partner_id
