"""Runtime adapters every package shares: settings, Kafka, PostgreSQL and the Airflow trigger."""
