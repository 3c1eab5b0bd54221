-- The days whose partner-level figures (control totals, scorecards) tonight restates: :d, and
-- the days within the look-back that :d's events were sent on or report control totals for.
SELECT DISTINCT day FROM (
    SELECT CAST(:d AS date) AS day
    UNION ALL
    SELECT sent_day FROM staging.events WHERE append_day = :d
    UNION ALL
    SELECT (data->>'business_day')::date FROM staging.events
    WHERE append_day = :d AND family = 'control.totals'
) related
WHERE day BETWEEN CAST(:d AS date) - CAST(:lookback AS int) AND :d
ORDER BY day
