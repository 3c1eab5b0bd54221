-- What the night found about a partner's own records. The other party of a finding is named
-- by partner id and role only: record ids of other partners are taken out of the detail.
SELECT t.subscriber, 'notice' AS kind,
       'notice ' || d.kind || ' ' || d.event_id || ' ' || d.reference AS record_key,
       d.person, CAST(NULL AS date) AS scope_day,
       jsonb_build_object(
           'kind', d.kind, 'severity', d.severity, 'business_day', d.business_day,
           'reference', d.reference, 'event_id', d.event_id,
           'detail', d.detail - 'canonical' - 'first_partner' - 'first_certificate',
           'counterparts', CASE WHEN other.partner_id IS NULL THEN CAST('[]' AS jsonb)
                                ELSE jsonb_build_array(jsonb_build_object(
                                    'partner_id', other.partner_id, 'role', p.role)) END
       ) AS payload
FROM warehouse.discrepancy d
JOIN feed_targets t ON t.slice = 'notices' AND t.partner_id = d.partner_id
CROSS JOIN LATERAL (SELECT nullif(CASE d.kind
        WHEN 'semantic_duplicate' THEN split_part(d.detail->>'canonical', ':', 1)
        WHEN 'double_claim' THEN d.detail->>'first_partner' END, d.partner_id) AS partner_id
) other
LEFT JOIN warehouse.dim_partner p ON p.partner_id = other.partner_id
WHERE d.person IN (SELECT fp.person FROM feed_persons AS fp)
