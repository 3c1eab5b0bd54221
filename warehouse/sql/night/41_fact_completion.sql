INSERT INTO warehouse.fact_completion (
    partner_id, enrollment_id, event_id, business_day, person, completed_at, hours_attended,
    enrollment_found)
SELECT c.partner_id, c.enrollment_id, c.event_id, c.fact_day, c.person, c.completed_at,
       c.hours_attended,
       EXISTS (SELECT 1 FROM int_enrollments n
               WHERE n.partner_id = c.partner_id AND n.enrollment_id = c.enrollment_id
                 AND n.person = c.person)
FROM int_completions c
WHERE c.report = 1
