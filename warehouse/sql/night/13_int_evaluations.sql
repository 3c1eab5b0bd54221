-- Evaluation reports with their corrections applied field by field, the latest one winning;
-- the first report of a (partner, evaluation id, person) is the record.
CREATE TEMP TABLE int_evaluations ON COMMIT DROP AS
SELECT v.partner_id, v.evaluation_id, v.person, v.event_id, v.fact_day, v.report,
       v.first_event_id,
       coalesce(x.occupation_code, v.occupation_code) AS occupation_code,
       coalesce(x.level, v.level) AS level,
       coalesce(x.theory_score, v.theory_score) AS theory_score,
       coalesce(x.practical_score, v.practical_score) AS practical_score,
       coalesce(x.result, v.result) AS result,
       v.evaluated_at, v.organisation_code, v.district_code, v.enrollment_id, v.work_type,
       coalesce(x.corrections, 0) AS corrections, x.last_corrected_at, x.last_corrected_day,
       coalesce(x.event_ids, '{}') AS correction_event_ids
FROM (
    SELECT partner_id, data->>'evaluation_id' AS evaluation_id, person, event_id, fact_day,
           data->>'occupation_code' AS occupation_code, (data->>'level')::smallint AS level,
           (data->>'theory_score')::numeric AS theory_score,
           (data->>'practical_score')::numeric AS practical_score, data->>'result' AS result,
           (data->>'evaluated_at')::timestamptz AS evaluated_at,
           data->'organisation'->>'credit_code' AS organisation_code,
           data->>'district_code' AS district_code, data->>'enrollment_id' AS enrollment_id,
           data->>'work_type' AS work_type,
           row_number() OVER report AS report,
           first_value(event_id) OVER report AS first_event_id
    FROM night_events WHERE family = 'evaluation.recorded'
    WINDOW report AS (PARTITION BY partner_id, data->>'evaluation_id', person
                      ORDER BY occurred_at, event_id COLLATE "C")
) v
LEFT JOIN (
    SELECT partner_id, data->>'evaluation_id' AS evaluation_id, person,
           count(*) AS corrections, max(occurred_at) AS last_corrected_at,
           (array_agg(fact_day ORDER BY occurred_at DESC, event_id COLLATE "C" DESC))[1]
               AS last_corrected_day,
           array_agg(event_id ORDER BY occurred_at, event_id COLLATE "C") AS event_ids,
           ((array_agg(data->>'occupation_code' ORDER BY occurred_at DESC, event_id COLLATE "C" DESC)
             FILTER (WHERE data->>'occupation_code' IS NOT NULL))[1]) AS occupation_code,
           ((array_agg(data->>'level' ORDER BY occurred_at DESC, event_id COLLATE "C" DESC)
             FILTER (WHERE data->>'level' IS NOT NULL))[1])::smallint AS level,
           ((array_agg(data->>'theory_score' ORDER BY occurred_at DESC, event_id COLLATE "C" DESC)
             FILTER (WHERE data->>'theory_score' IS NOT NULL))[1])::numeric AS theory_score,
           ((array_agg(data->>'practical_score' ORDER BY occurred_at DESC, event_id COLLATE "C" DESC)
             FILTER (WHERE data->>'practical_score' IS NOT NULL))[1])::numeric AS practical_score,
           ((array_agg(data->>'result' ORDER BY occurred_at DESC, event_id COLLATE "C" DESC)
             FILTER (WHERE data->>'result' IS NOT NULL))[1]) AS result
    FROM night_events WHERE family = 'evaluation.corrected'
    GROUP BY 1, 2, 3
) x ON v.report = 1 AND x.partner_id = v.partner_id AND x.evaluation_id = v.evaluation_id
   AND x.person = v.person
