-- How far each of a partner's enrollments got; the lifecycle view reads other partners'
-- evaluations and certificates of the same person, occupation and level.
SELECT t.subscriber, 'enrollment_outcome' AS kind,
       'enrollment_outcome ' || e.event_id AS record_key,
       e.person, CAST(NULL AS date) AS scope_day,
       jsonb_build_object(
           'enrollment_id', e.enrollment_id, 'event_id', e.event_id,
           'business_day', e.business_day, 'occupation_code', e.occupation_code,
           'level', e.level, 'status', e.status, 'withdrawn_day', e.withdrawn_day,
           'canonical', (e.canonical_partner_id, e.canonical_enrollment_id)
                        = (e.partner_id, e.enrollment_id),
           'completed', c.event_id IS NOT NULL, 'completed_day', c.business_day,
           'evaluated', l.evaluated, 'evaluation_passed', l.evaluation_passed,
           'certified', l.certified) AS payload
FROM warehouse.fact_enrollment e
JOIN feed_targets t ON t.slice = 'enrollment_outcomes' AND t.partner_id = e.partner_id
JOIN warehouse.feed_lifecycle l
  ON l.partner_id = e.partner_id AND l.enrollment_id = e.enrollment_id AND l.person = e.person
LEFT JOIN warehouse.fact_completion c
  ON c.partner_id = e.partner_id AND c.enrollment_id = e.enrollment_id AND c.person = e.person
WHERE e.person IN (SELECT fp.person FROM feed_persons AS fp)
