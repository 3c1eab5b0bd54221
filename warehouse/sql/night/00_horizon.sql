-- The latest business day loaded: a load sees the staging rows appended up to it.
SELECT greatest(CAST(:d AS date), max(business_day)) FROM ops.load_runs
