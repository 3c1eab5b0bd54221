"""The pipeline's own bookkeeping moves to an `ops` schema; `warehouse` keeps the marts.

Marts (dimensions, facts, discrepancies, scorecards and their views) are what readers query,
under row-level security; `ops` holds what runs record about themselves: loads, validation
results, the quarantine, and each day's accounting identity.
"""

from alembic import op

revision = "0009_operations_schema"
down_revision = "0008_ingest_edges"
branch_labels = None
depends_on = None

OPERATIONS_TABLES = ("load_runs", "validation_results", "quarantine", "accounting")


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS ops")
    for table in OPERATIONS_TABLES:
        op.execute(f"ALTER TABLE warehouse.{table} SET SCHEMA ops")
    # Operators (the city role) read the pipeline's records; district agencies do not.
    op.execute("GRANT USAGE ON SCHEMA ops TO skillsync_city")
    op.execute(f"GRANT SELECT ON {', '.join(f'ops.{t}' for t in OPERATIONS_TABLES)}"
               " TO skillsync_city")


def downgrade() -> None:
    for table in OPERATIONS_TABLES:
        op.execute(f"ALTER TABLE ops.{table} SET SCHEMA warehouse")
    op.execute("REVOKE USAGE ON SCHEMA ops FROM skillsync_city")
    op.execute("DROP SCHEMA ops")
