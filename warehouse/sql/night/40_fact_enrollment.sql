-- One row per enrollment record: its first report, the withdrawal that applies to it, and the
-- canonical record when another partner reported the same training first.
INSERT INTO warehouse.fact_enrollment (
    partner_id, enrollment_id, event_id, business_day, person, key_id, occupation_code, level,
    course_id, mode, institution_code, district_code, enrolled_at, status, withdrawn_at,
    withdrawal_reason, withdrawal_event_id, withdrawn_day, canonical_partner_id,
    canonical_enrollment_id)
SELECT e.partner_id, e.enrollment_id, e.event_id, e.fact_day, e.person, e.key_id,
       e.occupation_code, e.level, e.course_id, e.mode, e.institution_code, e.district_code,
       e.enrolled_at, CASE WHEN w.event_id IS NULL THEN 'active' ELSE 'withdrawn' END,
       w.withdrawn_at, w.reason, w.event_id, w.fact_day,
       coalesce(c.partner_id, e.partner_id), coalesce(c.enrollment_id, e.enrollment_id)
FROM int_enrollments e
LEFT JOIN int_withdrawals w
  ON w.partner_id = e.partner_id AND w.enrollment_id = e.enrollment_id AND w.person = e.person
 AND w.report = 1
-- The same training reported by another partner: the earliest report is canonical.
LEFT JOIN LATERAL (
    SELECT o.partner_id, o.enrollment_id FROM int_enrollments o
    WHERE o.person = e.person AND o.report = 1 AND o.partner_id <> e.partner_id
      AND o.occupation_code = e.occupation_code AND o.level = e.level
      AND abs(extract(epoch FROM o.enrolled_at - e.enrolled_at)) <= :duplicate_seconds
      AND (o.enrolled_at, o.partner_id COLLATE "C", o.enrollment_id COLLATE "C")
          < (e.enrolled_at, e.partner_id COLLATE "C", e.enrollment_id COLLATE "C")
    ORDER BY o.enrolled_at, o.partner_id COLLATE "C", o.enrollment_id COLLATE "C" LIMIT 1
) c ON true
WHERE e.report = 1
