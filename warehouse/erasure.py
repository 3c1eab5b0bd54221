"""Erase a person from staging and warehouse, and record it so that replays never restore them.

The ID number never leaves the operator's terminal: `python -m warehouse.erasure request`
turns it into the person's pseudonyms, and only those reach Airflow and the database.
"""

from __future__ import annotations

import argparse
import getpass
import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, text

from adapters.airflow import trigger_dag
from adapters.database import scoped_engine
from adapters.settings import Settings
from schemas.errors import ConfigurationError
from schemas.identity import ID_TYPES, IdentifierError, canonical_identity
from schemas.pseudonym import Pseudonymiser
from warehouse.load import LOAD_LOCK
from warehouse.outbox import erasure_changes

DAG_ID = "erase_person"
# Taken by every nightly load too: a load in flight never writes back what was just erased.
# Hex HMAC-SHA256, as `Pseudonymiser.person` writes it.
_PSEUDONYM = re.compile(r"[0-9a-f]{64}")


class ErasureRequestError(ConfigurationError):
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


def request_conf(pseudonymiser: Pseudonymiser, *, id_type: str, id_number: str,
                 requested_by: str, reason: str) -> dict[str, Any]:
    """The erase_person run's parameters: the person's pseudonyms, never their ID number."""
    by_key = pseudonyms_of(pseudonymiser, id_type, id_number)
    return {"id_type": id_type,
            "pseudonyms": [{"key_id": k, "person": p} for k, p in by_key.items()],
            "requested_by": requested_by, "reason": reason}


def parse_pseudonyms(items: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """{key_id: person} from a run's `pseudonyms`; one well-formed pseudonym per key version."""
    by_key: dict[str, Any] = {}
    for item in items:
        key_id = item.get("key_id")
        if not isinstance(key_id, str) or key_id in by_key:
            raise ErasureRequestError("each pseudonym needs a key_id of its own")
        by_key[key_id] = item.get("person")
    return _checked_pseudonyms(by_key)


def _checked_pseudonyms(by_key: Mapping[str, Any]) -> dict[str, str]:
    """The pseudonyms as given, once each key id and pseudonym is known to be well formed."""
    for key_id, person in by_key.items():
        if not isinstance(key_id, str) or not key_id:
            raise ErasureRequestError("each pseudonym needs a key_id of its own")
        if not isinstance(person, str) or not _PSEUDONYM.fullmatch(person):
            raise ErasureRequestError(
                f"the pseudonym under {key_id} is not 64 lower-case hex digits")
    if not by_key:
        raise ErasureRequestError("an erasure needs the person's pseudonyms")
    return dict(by_key)


def erase_person(engine: Engine, *, pseudonyms: Mapping[str, str], id_type: str,
                 requested_by: str, reason: str) -> ErasureResult:
    """Remove every row of the person ({key_id: pseudonym}), in one transaction, and record it.

    Erasing someone already erased is recorded again and removes whatever arrived since.
    """
    if not requested_by.strip() or not reason.strip():
        raise ErasureRequestError("an erasure needs who requested it and why")
    if id_type not in ID_TYPES:
        raise ErasureRequestError(f"unknown id_type {id_type!r}")
    by_key = _checked_pseudonyms(pseudonyms)
    persons = list(by_key.values())
    with engine.begin() as conn:
        conn.execute(LOAD_LOCK)
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
        # Every subscriber that was sent the person's records is sent their deletion.
        with erasure_changes(conn, persons, f"erasure-{erasure_id}"):
            removed = _remove_rows(conn, persons)
        conn.execute(text("UPDATE staging.erasures SET rows_removed = CAST(:removed AS jsonb)"
                          " WHERE erasure_id = :erasure"),
                     {"removed": json.dumps(removed, sort_keys=True), "erasure": erasure_id})
    return ErasureResult(erasure_id, len(persons), removed)


def _remove_rows(conn: Connection, persons: list[str]) -> dict[str, int]:
    params = {"persons": persons}
    removed: dict[str, int] = {}
    # Rows that name the person only through their events' keys go first, while the events
    # that lead to them still exist.
    for table, keys in (("ops.quarantine", "partner_id, event_id"),
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
          AND c.table_schema IN ('staging', 'warehouse', 'ops')
          AND c.table_name <> 'erased_persons'
        ORDER BY c.table_schema = 'staging', 1""")).scalars().all()
    for table in tables:
        schema, _, name = table.partition(".")
        removed[table] = conn.execute(text(
            f'DELETE FROM "{schema}"."{name}" WHERE person = ANY(:persons)'), params).rowcount
    return removed


def erase_configured(*, pseudonyms: Mapping[str, str], id_type: str, requested_by: str,
                     reason: str, settings: Settings | None = None) -> ErasureResult:
    """Erase in the configured database (SKILLSYNC_DATABASE_URL)."""
    s = settings or Settings.load()
    with scoped_engine(s.database.sqlalchemy) as engine:
        return erase_person(engine, pseudonyms=pseudonyms, id_type=id_type,
                            requested_by=requested_by, reason=reason)


def read_id_number(stdin: Any = None) -> str:
    """The ID number from a prompt that does not echo it, or the first line of piped input."""
    stream = stdin or sys.stdin
    if stream.isatty():
        return getpass.getpass("ID number (not shown): ")
    return str(stream.readline()).strip()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m warehouse.erasure",
        description="Request an erasure: the ID number is read from a prompt or standard input "
                    "(never the command line) and only the person's pseudonyms are passed on.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    request = commands.add_parser("request", help="erase one person (erase_person DAG)")
    request.add_argument("--id-type", choices=sorted(ID_TYPES), default="resident_id")
    request.add_argument("--requested-by", required=True, help="e.g. the ticket's owner")
    request.add_argument("--reason", required=True, help="e.g. the request's ticket reference")
    request.add_argument("--print", action="store_true", dest="print_only",
                         help="print the run's JSON parameters (for the UI's trigger form) "
                              "instead of triggering the run")
    args = parser.parse_args(argv)

    try:
        keys = Settings.load().keys.load()
        conf = request_conf(keys, id_type=args.id_type, id_number=read_id_number(),
                            requested_by=args.requested_by, reason=args.reason)
    except ConfigurationError as exc:
        print(f"erasure not requested: {exc}", file=sys.stderr)
        return 2
    if args.print_only:
        print(json.dumps(conf, ensure_ascii=False, indent=2))
        return 0
    # Airflow as this environment configures it (its AIRFLOW_* settings) runs the erasure.
    trigger_dag(DAG_ID, conf)
    print(f"{DAG_ID} triggered for {len(conf['pseudonyms'])} pseudonyms", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
