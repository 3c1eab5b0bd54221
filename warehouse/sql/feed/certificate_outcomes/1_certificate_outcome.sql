-- What became of each certificate a partner issued, its subsidy decision included.
SELECT t.subscriber, 'certificate_outcome' AS kind,
       'certificate_outcome ' || f.event_id AS record_key,
       f.person, CAST(NULL AS date) AS scope_day,
       jsonb_build_object(
           'certificate_number', f.certificate_number, 'event_id', f.event_id,
           'business_day', f.business_day, 'status', f.status, 'revoked_day', f.revoked_day,
           'passing_evaluation', f.passing_evaluation,
           'level_mismatch', f.evaluation_level IS DISTINCT FROM f.level
                             AND f.evaluation_level IS NOT NULL,
           'number_shared', f.number_shared,
           'subsidy', CASE WHEN s.certificate_number IS NOT NULL THEN jsonb_build_object(
               'eligible', s.eligible, 'reason', s.reason, 'amount_yuan', s.amount_yuan) END
       ) AS payload
FROM warehouse.fact_certificate f
JOIN feed_targets t ON t.slice = 'certificate_outcomes' AND t.partner_id = f.partner_id
LEFT JOIN warehouse.fact_subsidy_eligibility s
  ON s.certificate_number = f.certificate_number AND s.person = f.person
WHERE f.person IN (SELECT fp.person FROM feed_persons AS fp)
