-- A district bureau's completions: those of trainings its district held (their enrollment's).
SELECT t.subscriber, 'completion' AS kind,
       'completion ' || c.partner_id || ' ' || c.enrollment_id || ' ' || c.person AS record_key,
       c.person, CAST(NULL AS date) AS scope_day,
       jsonb_build_object(
           'partner_id', c.partner_id, 'enrollment_id', c.enrollment_id, 'person', c.person,
           'event_id', c.event_id, 'business_day', c.business_day,
           'completed_at', c.completed_at, 'hours_attended', c.hours_attended,
           'district_code', e.district_code) AS payload
FROM warehouse.fact_completion c
JOIN warehouse.fact_enrollment e
  ON e.partner_id = c.partner_id AND e.enrollment_id = c.enrollment_id AND e.person = c.person
JOIN warehouse.agency_district a ON a.district_code = e.district_code
JOIN feed_targets t ON t.slice = 'district' AND t.agency = a.agency
WHERE c.person IN (SELECT fp.person FROM feed_persons AS fp)
