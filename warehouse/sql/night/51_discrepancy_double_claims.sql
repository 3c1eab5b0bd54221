INSERT INTO warehouse.discrepancy
    (business_day, kind, reference, severity, partner_id, event_id, person, detail)
SELECT s.business_day, 'double_claim', s.certificate_number, 'error', s.partner_id,
       c.event_id, s.person,
       jsonb_build_object(
           'first_certificate', s.first_claim_number, 'first_partner', first.partner_id,
           'first_district', first.district_code, 'district', s.district_code,
           'occupation_code', s.occupation_code, 'level', s.level)
FROM warehouse.fact_subsidy_eligibility s
JOIN warehouse.fact_certificate c
  ON c.certificate_number = s.certificate_number AND c.person = s.person
LEFT JOIN warehouse.fact_certificate first
  ON first.certificate_number = s.first_claim_number AND first.person = s.person
WHERE s.person IN (SELECT n.person FROM night_persons AS n) AND s.reason = 'already_claimed'
