"""Erase a person from staging and warehouse, and record it so that replays never restore them."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, text

from schemas.identity import IdentifierError, canonical_identity
from schemas.pseudonym import Pseudonymiser

# Taken by every nightly load too: a load in flight never writes back what was just erased.
_LOAD_LOCK = "SELECT pg_advisory_xact_lock(hashtext('skillsync.load'))"


class ErasureRequestError(ValueError):
    """The request cannot be acted on (e.g. a malformed ID); the message never holds the ID."""


@dataclass(frozen=True)
class ErasureResult:
    erasure_id: int
    pseudonyms: int
    rows_removed: dict[str, int]


def pseudonyms_of(pseudonymiser: Pseudonymiser, id_type: str,
                  id_number: str) -> dict[str, str]:
    """{key_id: pseudonym} of the person under every key version."""
    try:
        canonical_type, canonical_number = canonical_identity(id_type, id_number)
    except IdentifierError as exc:
        raise ErasureRequestError(f"the {id_type} given is not valid ({exc.code})") from None
    return {key_id: pseudonymiser.person_under(key_id, canonical_type, canonical_number)
            for key_id in pseudonymiser.key_ids}


def erase_person(engine: Engine, pseudonymiser: Pseudonymiser, *, id_type: str, id_number: str,
                 requested_by: str, reason: str) -> ErasureResult:
    """Remove every row of the person, in one transaction, and record the erasure.

    Erasing someone already erased is recorded again and removes whatever arrived since.
    """
    if not requested_by.strip() or not reason.strip():
        raise ErasureRequestError("an erasure needs who requested it and why")
    by_key = pseudonyms_of(pseudonymiser, id_type, id_number)
    persons = list(by_key.values())
    with engine.begin() as conn:
        conn.execute(text(_LOAD_LOCK))
        # Consumers land concurrently: wait for their open batches, hold new ones until the
        # erasure is committed, after which the trigger turns the person's rows away.
        conn.execute(text("LOCK TABLE staging.events IN SHARE ROW EXCLUSIVE MODE"))
        erasure_id = conn.execute(text(
            "INSERT INTO staging.erasures (id_type, requested_by, reason)"
            " VALUES (:id_type, :by, :reason) RETURNING erasure_id"),
            {"id_type": id_type, "by": requested_by, "reason": reason}).scalar_one()
        conn.execute(text(
            "INSERT INTO staging.erased_persons (person, key_id, erasure_id)"
            " SELECT p, k, :erasure FROM unnest(CAST(:persons AS text[]),"
            " CAST(:keys AS text[])) AS x(p, k) ON CONFLICT (person) DO NOTHING"),
            {"persons": persons, "keys": list(by_key), "erasure": erasure_id})
        conn.execute(text(
            "INSERT INTO staging.erased_events (partner_id, event_id, erasure_id)"
            " SELECT partner_id, event_id, :erasure FROM staging.events"
            " WHERE person = ANY(:persons) ON CONFLICT DO NOTHING"),
            {"persons": persons, "erasure": erasure_id})
        removed = _remove_rows(conn, persons)
        conn.execute(text("UPDATE staging.erasures SET rows_removed = CAST(:removed AS jsonb)"
                          " WHERE erasure_id = :erasure"),
                     {"removed": json.dumps(removed, sort_keys=True), "erasure": erasure_id})
    return ErasureResult(erasure_id, len(persons), removed)


def _remove_rows(conn: Connection, persons: list[str]) -> dict[str, int]:
    params = {"persons": persons}
    removed: dict[str, int] = {}
    # Rows that name the person only through their events' keys or references go first, while
    # the rows that lead to them still exist.
    removed["warehouse.discrepancy"] = conn.execute(text("""
        DELETE FROM warehouse.discrepancy d USING (
            SELECT partner_id || ':' || event_id AS reference FROM staging.events
            WHERE person = ANY(:persons)
            UNION SELECT partner_id || ':' || enrollment_id FROM warehouse.fact_enrollment
            WHERE person = ANY(:persons)
            UNION SELECT partner_id || ':' || enrollment_id FROM warehouse.fact_completion
            WHERE person = ANY(:persons)
            UNION SELECT certificate_number FROM warehouse.fact_certificate
            WHERE person = ANY(:persons)) mine
        WHERE d.reference = mine.reference"""), params).rowcount
    for table, keys in (("warehouse.quarantine", "partner_id, event_id"),
                        ("staging.redeliveries", "partner_id, event_id")):
        removed[table] = conn.execute(text(
            f"DELETE FROM {table} WHERE ({keys}) IN"
            f" (SELECT {keys} FROM staging.events WHERE person = ANY(:persons))"),
            params).rowcount
    # Every table holding a `person` column, so a table added later is not forgotten.
    tables = conn.execute(text("""
        SELECT c.table_schema || '.' || c.table_name FROM information_schema.columns c
        JOIN information_schema.tables t USING (table_schema, table_name)
        WHERE c.column_name = 'person' AND t.table_type = 'BASE TABLE'
          AND c.table_schema IN ('staging', 'warehouse')
          AND c.table_name <> 'erased_persons'
        ORDER BY c.table_schema = 'staging', 1""")).scalars().all()
    for table in tables:
        schema, _, name = table.partition(".")
        removed[table] = conn.execute(text(
            f'DELETE FROM "{schema}"."{name}" WHERE person = ANY(:persons)'), params).rowcount
    return removed



def erase_configured(*, id_type: str, id_number: str, requested_by: str,
                     reason: str) -> ErasureResult:
    """Erase with the consumers' pseudonym keys and database, so the pseudonyms match theirs."""
    from consumers.settings import ConsumerSettings
    from schemas.pseudonym import load_key_file
    from warehouse.db import make_engine

    settings = ConsumerSettings.load()
    pseudonymiser = load_key_file(settings.pseudonym_key_file)
    engine = make_engine(settings.database_url.get_secret_value())
    try:
        return erase_person(engine, pseudonymiser, id_type=id_type, id_number=id_number,
                            requested_by=requested_by, reason=reason)
    finally:
        engine.dispose()
