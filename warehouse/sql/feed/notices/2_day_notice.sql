-- Findings about a partner's day (control totals): restated with the day's partner figures.
SELECT t.subscriber, 'notice' AS kind,
       'notice ' || d.kind || ' ' || d.event_id || ' ' || d.reference AS record_key,
       CAST(NULL AS text) AS person, d.business_day AS scope_day,
       jsonb_build_object(
           'kind', d.kind, 'severity', d.severity, 'business_day', d.business_day,
           'reference', d.reference, 'event_id', d.event_id, 'detail', d.detail,
           'counterparts', CAST('[]' AS jsonb)) AS payload
FROM warehouse.discrepancy d
JOIN feed_targets t ON t.slice = 'notices' AND t.partner_id = d.partner_id
WHERE d.person IS NULL AND d.business_day = ANY(CAST(:days AS date[]))
