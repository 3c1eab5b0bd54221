SELECT kind, severity, count(*)::int AS count
FROM warehouse.discrepancy
WHERE business_day = :day
GROUP BY 1, 2
ORDER BY 1, 2
