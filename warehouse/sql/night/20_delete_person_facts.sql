-- The restated people's facts and findings go; the statements below write them anew.
WITH gone_enrollments AS (
    DELETE FROM warehouse.fact_enrollment WHERE person IN (SELECT n.person FROM night_persons AS n)
    RETURNING 1),
gone_completions AS (
    DELETE FROM warehouse.fact_completion WHERE person IN (SELECT n.person FROM night_persons AS n)
    RETURNING 1),
gone_evaluations AS (
    DELETE FROM warehouse.fact_evaluation WHERE person IN (SELECT n.person FROM night_persons AS n)
    RETURNING 1),
gone_certificates AS (
    DELETE FROM warehouse.fact_certificate WHERE person IN (SELECT n.person FROM night_persons AS n)
    RETURNING 1),
gone_subsidies AS (
    DELETE FROM warehouse.fact_subsidy_eligibility
    WHERE person IN (SELECT n.person FROM night_persons AS n) RETURNING 1)
DELETE FROM warehouse.discrepancy WHERE person IN (SELECT n.person FROM night_persons AS n)
