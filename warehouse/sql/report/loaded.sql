SELECT EXISTS (SELECT 1 FROM ops.load_runs WHERE business_day = :day) AS loaded
