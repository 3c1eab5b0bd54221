SELECT reason, count(*)::int AS certificates
FROM warehouse.fact_subsidy_eligibility
WHERE business_day = :day AND NOT eligible
GROUP BY 1
ORDER BY 1
