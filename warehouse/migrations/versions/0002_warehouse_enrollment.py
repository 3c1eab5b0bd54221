"""Warehouse: the enrollment fact and the record of each night's load."""

from alembic import op

revision = "0002_warehouse_enrollment"
down_revision = "0001_staging"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS warehouse")
    op.execute(
        """
        CREATE TABLE warehouse.fact_enrollment (
            partner_id       text        NOT NULL,
            enrollment_id    text        NOT NULL,
            event_id         text        NOT NULL,
            business_day     date        NOT NULL,
            person           text        NOT NULL,
            key_id           text        NOT NULL,
            occupation_code  text        NOT NULL,
            level            smallint    NOT NULL,
            course_id        text,
            mode             text,
            institution_code text,
            district_code    text,
            enrolled_at      timestamptz NOT NULL,
            PRIMARY KEY (partner_id, enrollment_id)
        )
        """
    )
    op.execute("CREATE INDEX fact_enrollment_day ON warehouse.fact_enrollment (business_day)")
    op.execute(
        """
        CREATE TABLE warehouse.load_runs (
            business_day  date        NOT NULL,
            run_id        text        NOT NULL,
            table_name    text        NOT NULL,
            rows_loaded   integer     NOT NULL,
            loaded_at     timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (business_day, run_id, table_name)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP SCHEMA warehouse CASCADE")
