SELECT c.occupation_code, o.name_en AS occupation, o.name_zh AS occupation_zh,
       c.certificate_type, c.level,
       count(*) FILTER (WHERE c.status = 'in_force')::int AS in_force,
       count(*) FILTER (WHERE c.status = 'revoked')::int AS revoked
FROM warehouse.fact_certificate AS c
LEFT JOIN warehouse.dim_occupation AS o ON o.code = c.occupation_code
WHERE c.business_day = :day
GROUP BY 1, 2, 3, 4, 5
ORDER BY 1 NULLS LAST, 4, 5
