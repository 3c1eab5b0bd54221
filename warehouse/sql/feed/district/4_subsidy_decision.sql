-- A district bureau's subsidy decisions: those on certificates of its district. The first
-- claim of a double claim may lie in another district: only its number is given.
SELECT t.subscriber, 'subsidy_decision' AS kind,
       'subsidy_decision ' || s.certificate_number || ' ' || s.person AS record_key,
       s.person, CAST(NULL AS date) AS scope_day,
       jsonb_build_object(
           'certificate_number', s.certificate_number, 'person', s.person,
           'business_day', s.business_day, 'partner_id', s.partner_id,
           'district_code', s.district_code, 'occupation_code', s.occupation_code,
           'level', s.level, 'certificate_type', s.certificate_type,
           'issued_day', s.issued_day, 'scheme', s.scheme, 'eligible', s.eligible,
           'reason', s.reason, 'amount_yuan', s.amount_yuan,
           'first_claim_number', s.first_claim_number, 'double_claim', NULL) AS payload
FROM warehouse.fact_subsidy_eligibility s
JOIN warehouse.agency_district a ON a.district_code = s.district_code
JOIN feed_targets t ON t.slice = 'district' AND t.agency = a.agency
WHERE s.person IN (SELECT fp.person FROM feed_persons AS fp)
