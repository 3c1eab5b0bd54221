"""Erasure records that keep erased persons out of staging, and the outcome of reject replays."""

from alembic import op

revision = "0004_erasure"
down_revision = "0003_star_schema"
branch_labels = None
depends_on = None

_STATEMENTS = (
    # Who asked, when and why; never the ID number itself.
    """CREATE TABLE staging.erasures (
        erasure_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id_type      text        NOT NULL,
        requested_by text        NOT NULL,
        reason       text        NOT NULL,
        erased_at    timestamptz NOT NULL DEFAULT now(),
        rows_removed jsonb       NOT NULL DEFAULT '{}')""",
    # One pseudonym per key version that existed at erasure time.
    """CREATE TABLE staging.erased_persons (
        person     text   PRIMARY KEY,
        key_id     text   NOT NULL,
        erasure_id bigint NOT NULL REFERENCES staging.erasures)""",
    # The erased person's events by idempotency key: a replay of them stays out even when it is
    # pseudonymised under a key created after the erasure.
    """CREATE TABLE staging.erased_events (
        partner_id text   NOT NULL,
        event_id   text   NOT NULL,
        erasure_id bigint NOT NULL REFERENCES staging.erasures,
        PRIMARY KEY (partner_id, event_id))""",
    # Enforced where every landing path passes, so no consumer needs to know about erasures.
    # Once per statement over the rows it inserted, not once per row: a per-row trigger cost
    # landing about half its throughput. An erased row never outlives its own statement.
    """CREATE FUNCTION staging.drop_erased() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         DELETE FROM staging.events e USING (
             SELECT n.partner_id, n.event_id FROM inserted n
             WHERE n.person IN (SELECT person FROM staging.erased_persons)
             UNION
             SELECT n.partner_id, n.event_id FROM inserted n
             JOIN staging.erased_events x USING (partner_id, event_id)) erased
         WHERE e.partner_id = erased.partner_id AND e.event_id = erased.event_id;
         RETURN NULL;
       END $$""",
    """CREATE TRIGGER events_drop_erased AFTER INSERT ON staging.events
       REFERENCING NEW TABLE AS inserted
       FOR EACH STATEMENT EXECUTE FUNCTION staging.drop_erased()""",
    # A replayed reject: 'landed', 'duplicate' (already in staging), 'erased' or 'refused'
    # (with its new reason in reason_code and the first one kept in original_reason_code).
    """ALTER TABLE staging.rejected
        ADD COLUMN replay_outcome text
            CHECK (replay_outcome IN ('landed', 'duplicate', 'erased', 'refused')),
        ADD COLUMN replayed_at timestamptz,
        ADD COLUMN replay_run text,
        ADD COLUMN original_reason_code text""",
)


def upgrade() -> None:
    for statement in _STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("""ALTER TABLE staging.rejected DROP COLUMN replay_outcome,
        DROP COLUMN replayed_at, DROP COLUMN replay_run, DROP COLUMN original_reason_code""")
    op.execute("DROP TRIGGER events_drop_erased ON staging.events")
    op.execute("DROP FUNCTION staging.drop_erased()")
    for name in ("erased_events", "erased_persons", "erasures"):
        op.execute(f"DROP TABLE staging.{name}")
