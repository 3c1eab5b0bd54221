-- One row per certificate record, linked to its evaluation (corrections applied) and to the
-- revocation that applies to it; a number another person also holds is flagged.
INSERT INTO warehouse.fact_certificate (
    certificate_number, person, partner_id, event_id, business_day, certificate_type, scheme,
    occupation_code, level, issued_at, evaluation_id, organisation_code, district_code,
    evaluation_level, paired_certificate_number, status, revoked_at, revocation_reason,
    revocation_partner_id, revocation_event_id, revoked_day, passing_evaluation,
    number_shared)
SELECT k.certificate_number, k.person, k.partner_id, k.event_id, k.fact_day,
       k.certificate_type, k.scheme, k.occupation_code, k.level, k.issued_at, k.evaluation_id,
       k.organisation_code, v.district_code, v.level, k.paired_certificate_number,
       CASE WHEN r.event_id IS NULL THEN 'in_force' ELSE 'revoked' END,
       r.revoked_at, r.reason, r.partner_id, r.event_id, r.fact_day,
       coalesce(v.result = 'pass', false) OR EXISTS (
           SELECT 1 FROM int_evaluations p
           WHERE p.person = k.person AND p.report = 1 AND p.result = 'pass'
             AND p.occupation_code = k.occupation_code AND p.level = k.level),
       EXISTS (
           SELECT 1 FROM staging.events s
           WHERE s.family = 'certificate.issued'
             AND s.data->>'certificate_number' = k.certificate_number
             AND s.person <> k.person AND s.append_day <= :h
             AND NOT EXISTS (SELECT 1 FROM ops.quarantine q
                             WHERE q.partner_id = s.partner_id AND q.event_id = s.event_id))
FROM int_certificates k
LEFT JOIN int_revocations r
  ON r.certificate_number = k.certificate_number AND r.person = k.person AND r.report = 1
LEFT JOIN int_evaluations v
  ON v.partner_id = k.partner_id AND v.evaluation_id = k.evaluation_id AND v.person = k.person
 AND v.report = 1
WHERE k.report = 1
