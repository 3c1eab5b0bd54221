"""Staging: landed events, consumer positions and redacted rejects."""

from alembic import op

revision = "0001_staging"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS staging")
    op.execute(
        """
        CREATE TABLE staging.events (
            partner_id      text        NOT NULL,
            event_id        text        NOT NULL,
            family          text        NOT NULL,
            event_type      text        NOT NULL,
            version         smallint    NOT NULL,
            subject         text,
            occurred_at     timestamptz NOT NULL,
            appended_at     timestamptz NOT NULL,
            append_day      date        NOT NULL,
            person          text,
            key_id          text,
            data            jsonb       NOT NULL,
            warnings        text[]      NOT NULL DEFAULT '{}',
            topic           text        NOT NULL,
            kafka_partition integer     NOT NULL,
            kafka_offset    bigint      NOT NULL,
            landed_at       timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (partner_id, event_id)
        )
        """
    )
    # The night reads one append day at a time; cost must follow the day, not history.
    op.execute("CREATE INDEX events_append_day ON staging.events (append_day, family)")
    op.execute("CREATE INDEX events_person ON staging.events (person) WHERE person IS NOT NULL")
    op.execute(
        """
        CREATE TABLE staging.consumer_offsets (
            group_id    text        NOT NULL,
            topic       text        NOT NULL,
            partition   integer     NOT NULL,
            next_offset bigint      NOT NULL,
            updated_at  timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (group_id, topic, partition)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE staging.rejected (
            topic           text        NOT NULL,
            kafka_partition integer     NOT NULL,
            kafka_offset    bigint      NOT NULL,
            partner_id      text        NOT NULL,
            appended_at     timestamptz NOT NULL,
            append_day      date        NOT NULL,
            event_id        text,
            reason_code     text        NOT NULL,
            field_path      text        NOT NULL,
            message         text        NOT NULL,
            stage           text        NOT NULL,
            size_bytes      integer     NOT NULL,
            payload_sha256  text        NOT NULL,
            rejected_at     timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (topic, kafka_partition, kafka_offset)
        )
        """
    )
    op.execute("CREATE INDEX rejected_day ON staging.rejected (append_day, partner_id)")
    op.execute(
        """
        CREATE TABLE staging.redeliveries (
            partner_id  text    NOT NULL,
            append_day  date    NOT NULL,
            event_id    text    NOT NULL,
            topic           text    NOT NULL,
            kafka_partition integer NOT NULL,
            kafka_offset    bigint  NOT NULL,
            PRIMARY KEY (topic, kafka_partition, kafka_offset)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP SCHEMA staging CASCADE")
