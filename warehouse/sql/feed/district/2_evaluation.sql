-- A district bureau's evaluations: those held in its district, corrections applied.
SELECT t.subscriber, 'evaluation' AS kind,
       'evaluation ' || f.partner_id || ' ' || f.evaluation_id || ' ' || f.person AS record_key,
       f.person, CAST(NULL AS date) AS scope_day,
       jsonb_build_object(
           'partner_id', f.partner_id, 'evaluation_id', f.evaluation_id, 'person', f.person,
           'event_id', f.event_id, 'business_day', f.business_day,
           'occupation_code', f.occupation_code, 'level', f.level,
           'theory_score', f.theory_score, 'practical_score', f.practical_score,
           'result', f.result, 'evaluated_at', f.evaluated_at,
           'organisation_code', f.organisation_code, 'district_code', f.district_code,
           'enrollment_id', f.enrollment_id, 'work_type', f.work_type,
           'corrections', f.corrections, 'last_corrected_day', f.last_corrected_day) AS payload
FROM warehouse.fact_evaluation f
JOIN warehouse.agency_district a ON a.district_code = f.district_code
JOIN feed_targets t ON t.slice = 'district' AND t.agency = a.agency
WHERE f.person IN (SELECT fp.person FROM feed_persons AS fp)
