SELECT level, certificate_type, count(*)::int AS certificates,
       sum(amount_yuan)::bigint AS amount_yuan
FROM warehouse.fact_subsidy_eligibility
WHERE business_day = :day AND eligible
GROUP BY 1, 2
ORDER BY 2, 1 NULLS LAST
