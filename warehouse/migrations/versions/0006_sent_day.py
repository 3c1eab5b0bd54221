"""Staging keeps the partner's send time: control totals count events by the partner's own day."""

from alembic import op

revision = "0006_sent_day"
down_revision = "0005_agency_rls"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE staging.events ADD COLUMN sent_at timestamptz")
    # Rows landed before this column: the broker's append time is the closest known send time.
    op.execute("UPDATE staging.events SET sent_at = appended_at WHERE sent_at IS NULL")
    op.execute("ALTER TABLE staging.events ALTER COLUMN sent_at SET NOT NULL")
    op.execute(
        "ALTER TABLE staging.events ADD COLUMN sent_day date "
        "GENERATED ALWAYS AS ((sent_at AT TIME ZONE 'Asia/Shanghai')::date) STORED"
    )
    op.execute(
        "CREATE INDEX events_partner_sent_day ON staging.events (partner_id, family, sent_day)"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE staging.events DROP COLUMN sent_day")
    op.execute("ALTER TABLE staging.events DROP COLUMN sent_at")
