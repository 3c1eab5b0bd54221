-- The restated days' partner-level figures go; the statements below write them anew.
WITH gone_totals AS (
    DELETE FROM warehouse.fact_control_totals
    WHERE business_day = ANY(:days) OR append_day = :d RETURNING 1),
gone_scorecards AS (
    DELETE FROM warehouse.partner_scorecard WHERE business_day = ANY(:days) RETURNING 1)
DELETE FROM warehouse.discrepancy WHERE person IS NULL AND business_day = ANY(:days)
