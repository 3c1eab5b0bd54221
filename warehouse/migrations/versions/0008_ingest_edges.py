"""Staging tells topic incarnations apart and keeps a digest of each landed event's bytes."""

from alembic import op

revision = "0008_ingest_edges"
down_revision = "0007_accounting"
branch_labels = None
depends_on = None

# A deleted and re-created topic numbers its offsets from 0 again: Kafka's topic id tells the
# new incarnation from the old. Rows from before this revision have none (NULL).
_TOPIC_ID_TABLES = ("consumer_offsets", "events", "rejected", "redeliveries")


def upgrade() -> None:
    for table in _TOPIC_ID_TABLES:
        op.execute(f"ALTER TABLE staging.{table} ADD COLUMN topic_id uuid")
    # SHA-256 of the message bytes: the same id with other bytes is refused, not a redelivery.
    op.execute("ALTER TABLE staging.events ADD COLUMN payload_sha256 bytea")
    # A refusal or redelivery at offsets an earlier incarnation of the topic also used is a
    # record of its own: the incarnation joins the key.
    for table in ("rejected", "redeliveries"):
        op.execute(f"ALTER TABLE staging.{table} DROP CONSTRAINT {table}_pkey")
        op.execute(
            f"CREATE UNIQUE INDEX {table}_origin ON staging.{table} "
            "(topic, kafka_partition, kafka_offset, topic_id) NULLS NOT DISTINCT"
        )


def downgrade() -> None:
    for table in ("rejected", "redeliveries"):
        op.execute(f"DROP INDEX staging.{table}_origin")
        op.execute(
            f"ALTER TABLE staging.{table} ADD PRIMARY KEY (topic, kafka_partition, kafka_offset)"
        )
    op.execute("ALTER TABLE staging.events DROP COLUMN payload_sha256")
    for table in _TOPIC_ID_TABLES:
        op.execute(f"ALTER TABLE staging.{table} DROP COLUMN topic_id")
