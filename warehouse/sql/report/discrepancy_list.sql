-- The most severe first; the page lists a bounded number, the counts cover all.
SELECT severity, kind, reference, partner_id, detail
FROM warehouse.discrepancy
WHERE business_day = :day
ORDER BY array_position(CAST(:severities AS text []), severity), kind, reference
LIMIT :limit
