INSERT INTO warehouse.fact_evaluation (
    partner_id, evaluation_id, event_id, business_day, person, occupation_code, level,
    theory_score, practical_score, result, evaluated_at, organisation_code, district_code,
    enrollment_id, work_type, corrections, last_corrected_at, correction_event_ids,
    last_corrected_day)
SELECT partner_id, evaluation_id, event_id, fact_day, person, occupation_code, level,
       theory_score, practical_score, result, evaluated_at, organisation_code, district_code,
       enrollment_id, work_type, corrections, last_corrected_at, correction_event_ids,
       last_corrected_day
FROM int_evaluations
WHERE report = 1
