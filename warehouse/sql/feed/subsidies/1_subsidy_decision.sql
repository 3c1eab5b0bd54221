-- The subsidy office's decisions: every one, a double claim naming the claim that came first.
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
           'first_claim_number', s.first_claim_number,
           'double_claim', CASE WHEN s.reason = 'already_claimed' THEN jsonb_build_object(
               'first_certificate_number', s.first_claim_number,
               'first_partner_id', f.partner_id, 'first_district_code', f.district_code) END
       ) AS payload
FROM warehouse.fact_subsidy_eligibility s
JOIN feed_targets t ON t.slice = 'subsidies'
-- The first claim is the same person's: restated with this one.
LEFT JOIN warehouse.fact_subsidy_eligibility f
  ON f.certificate_number = s.first_claim_number AND f.person = s.person
WHERE s.person IN (SELECT fp.person FROM feed_persons AS fp)
