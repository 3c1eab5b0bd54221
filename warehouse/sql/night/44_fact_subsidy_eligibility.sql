-- Once per person, certificate type, occupation and level: the earliest certificate in force
-- whose number is that person's alone holds the claim; the amount follows the dated rules.
INSERT INTO warehouse.fact_subsidy_eligibility (
    certificate_number, person, business_day, partner_id, district_code, occupation_code,
    level, certificate_type, issued_day, scheme, eligible, reason, amount_yuan,
    first_claim_number)
SELECT f.certificate_number, f.person, f.business_day, f.partner_id, f.district_code,
       f.occupation_code, f.level, f.certificate_type, f.issued_day, :scheme,
       d.reason = 'eligible', d.reason,
       CASE WHEN d.reason = 'eligible' THEN rule.amount_yuan END, earlier.certificate_number
FROM (SELECT *, (issued_at AT TIME ZONE 'Asia/Shanghai')::date AS issued_day
      FROM warehouse.fact_certificate
      WHERE person IN (SELECT n.person FROM night_persons AS n)) f
LEFT JOIN LATERAL (
    SELECT s.certificate_number, s.partner_id, s.evaluation_id
    FROM warehouse.fact_certificate s
    WHERE s.person = f.person AND s.certificate_type = f.certificate_type
      AND s.occupation_code IS NOT DISTINCT FROM f.occupation_code
      AND s.level IS NOT DISTINCT FROM f.level
      AND s.status = 'in_force' AND NOT s.number_shared
      AND (s.issued_at, s.certificate_number COLLATE "C")
          < (f.issued_at, f.certificate_number COLLATE "C")
    ORDER BY s.issued_at, s.certificate_number COLLATE "C" LIMIT 1
) earlier ON true
LEFT JOIN LATERAL (
    SELECT r.amount_yuan FROM warehouse.dim_subsidy_rule r
    WHERE r.scheme = :scheme AND r.certificate_type = f.certificate_type
      AND r.level IS NOT DISTINCT FROM f.level AND f.issued_day >= r.valid_from
      AND (r.valid_to IS NULL OR f.issued_day < r.valid_to)
    ORDER BY r.valid_from DESC LIMIT 1
) rule ON true
CROSS JOIN LATERAL (SELECT CASE
    WHEN f.status = 'revoked' THEN 'revoked'
    WHEN f.number_shared THEN 'shared_number'
    WHEN earlier.certificate_number IS NOT NULL AND earlier.partner_id = f.partner_id
         AND earlier.evaluation_id = f.evaluation_id THEN 'paired_certificate'
    WHEN earlier.certificate_number IS NOT NULL THEN 'already_claimed'
    WHEN rule.amount_yuan IS NULL THEN 'no_rule'
    ELSE 'eligible' END AS reason) d
