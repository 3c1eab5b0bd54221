-- Events that made no record and changed none: a repeated report of a record, a change after
-- the one that applied, a change naming no record of that person. Each is named here.
INSERT INTO warehouse.discrepancy
    (business_day, kind, reference, severity, partner_id, event_id, person, detail)
SELECT fact_day, 'repeated_record', reference, 'warning', partner_id, event_id, person,
       jsonb_build_object('family', family, 'record_event_id', first_event_id)
FROM (
    SELECT 'enrollment.created' AS family, partner_id || ':' || enrollment_id AS reference,
           partner_id, event_id, person, fact_day, report, first_event_id
    FROM int_enrollments
    UNION ALL
    SELECT 'completion.recorded', partner_id || ':' || enrollment_id, partner_id, event_id,
           person, fact_day, report, first_event_id
    FROM int_completions
    UNION ALL
    SELECT 'evaluation.recorded', partner_id || ':' || evaluation_id, partner_id, event_id,
           person, fact_day, report, first_event_id
    FROM int_evaluations
    UNION ALL
    SELECT 'certificate.issued', certificate_number, partner_id, event_id, person, fact_day,
           report, first_event_id
    FROM int_certificates
) reports
WHERE report > 1
UNION ALL
SELECT fact_day,
       CASE WHEN has_record THEN 'repeated_change' ELSE 'change_without_record' END,
       reference, CASE WHEN has_record THEN 'info' ELSE 'warning' END, partner_id, event_id,
       person,
       jsonb_build_object('family', family,
                          'applied_event_id', CASE WHEN has_record THEN first_event_id END)
FROM (
    SELECT 'enrollment.withdrawn' AS family, w.partner_id || ':' || w.enrollment_id AS reference,
           w.partner_id, w.event_id, w.person, w.fact_day, w.report, w.first_event_id,
           EXISTS (SELECT 1 FROM int_enrollments e
                   WHERE e.partner_id = w.partner_id AND e.enrollment_id = w.enrollment_id
                     AND e.person = w.person) AS has_record
    FROM int_withdrawals w
    UNION ALL
    SELECT 'certificate.revoked', r.certificate_number, r.partner_id, r.event_id, r.person,
           r.fact_day, r.report, r.first_event_id,
           EXISTS (SELECT 1 FROM int_certificates k
                   WHERE k.certificate_number = r.certificate_number AND k.person = r.person)
    FROM int_revocations r
    UNION ALL
    -- Every correction of a record applies; only one naming no record is left to flag.
    SELECT 'evaluation.corrected', x.partner_id || ':' || (x.data->>'evaluation_id'),
           x.partner_id, x.event_id, x.person, x.fact_day, 1, NULL, false
    FROM night_events x
    WHERE x.family = 'evaluation.corrected' AND NOT EXISTS (
        SELECT 1 FROM int_evaluations v
        WHERE v.partner_id = x.partner_id AND v.evaluation_id = x.data->>'evaluation_id'
          AND v.person = x.person)
) changes
WHERE NOT has_record OR report > 1
