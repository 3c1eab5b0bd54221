-- Each partner's accounting identity for the day's events, as the day's latest load found it:
-- staged = in the warehouse + named (quarantined, or by a discrepancy) + unaccounted (0).
SELECT partner_id, sum(staged)::int AS staged, sum(reflected)::int AS reflected,
       sum(quarantined + flagged)::int AS named, sum(unaccounted)::int AS unaccounted
FROM ops.accounting
WHERE business_day = :day
GROUP BY 1
ORDER BY 1
