-- A district bureau's certificates: those whose evaluation took place in its district, with
-- retired district codes read by their successor agency, as row-level security maps them.
SELECT t.subscriber, 'certificate' AS kind,
       'certificate ' || f.certificate_number || ' ' || f.person AS record_key,
       f.person, CAST(NULL AS date) AS scope_day,
       jsonb_build_object(
           'certificate_number', f.certificate_number, 'person', f.person,
           'partner_id', f.partner_id, 'event_id', f.event_id, 'business_day', f.business_day,
           'certificate_type', f.certificate_type, 'scheme', f.scheme,
           'occupation_code', f.occupation_code, 'level', f.level, 'issued_at', f.issued_at,
           'evaluation_id', f.evaluation_id, 'organisation_code', f.organisation_code,
           'district_code', f.district_code, 'evaluation_level', f.evaluation_level,
           'paired_certificate_number', f.paired_certificate_number, 'status', f.status,
           'revoked_at', f.revoked_at, 'revocation_reason', f.revocation_reason,
           'revoked_day', f.revoked_day, 'passing_evaluation', f.passing_evaluation,
           'number_shared', f.number_shared) AS payload
FROM warehouse.fact_certificate f
JOIN warehouse.agency_district a ON a.district_code = f.district_code
JOIN feed_targets t ON t.slice = 'district' AND t.agency = a.agency
WHERE f.person IN (SELECT fp.person FROM feed_persons AS fp)
