"""The warehouse: migrations, the nightly load (SQL under sql/), the accounting identity, the
report, erasure and rebuild.

Others use: load (load_day, ReconcileRules), nightly (the DAG's steps), accounting, erasure,
report (write_day_report), rebuild, migrate (upgrade), alerts (notify_failure), freshness.
"""
