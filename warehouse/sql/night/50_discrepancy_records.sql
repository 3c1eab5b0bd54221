-- What the restated people's records say about themselves.
INSERT INTO warehouse.discrepancy
    (business_day, kind, reference, severity, partner_id, event_id, person, detail)
SELECT business_day, 'semantic_duplicate', partner_id || ':' || enrollment_id, 'info',
       partner_id, event_id, person,
       jsonb_build_object('canonical', canonical_partner_id || ':' || canonical_enrollment_id)
FROM warehouse.fact_enrollment
WHERE person IN (SELECT n.person FROM night_persons AS n)
  AND (canonical_partner_id, canonical_enrollment_id) <> (partner_id, enrollment_id)
UNION ALL
SELECT business_day, 'completion_without_enrollment', partner_id || ':' || enrollment_id,
       'warning', partner_id, event_id, person, jsonb_build_object('event_id', event_id)
FROM warehouse.fact_completion
WHERE person IN (SELECT n.person FROM night_persons AS n) AND NOT enrollment_found
UNION ALL
SELECT f.business_day, found.kind, f.certificate_number, 'error', f.partner_id, f.event_id,
       f.person, found.detail
FROM warehouse.fact_certificate f
CROSS JOIN LATERAL (VALUES
    ('certificate_without_passing_evaluation', NOT f.passing_evaluation,
     jsonb_build_object('evaluation_id', f.evaluation_id, 'event_id', f.event_id)),
    ('level_mismatch', f.evaluation_level IS DISTINCT FROM f.level
                       AND f.evaluation_level IS NOT NULL,
     jsonb_build_object('certificate_level', f.level, 'evaluation_level', f.evaluation_level,
                        'evaluation_id', f.evaluation_id)),
    ('certificate_number_conflict', f.number_shared, jsonb_build_object('event_id', f.event_id))
) AS found(kind, raised, detail)
WHERE f.person IN (SELECT n.person FROM night_persons AS n) AND found.raised
