"""An erased person leaves staging and warehouse, and replays and reruns never bring them back."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import psycopg
import pytest

from adapters.database import make_engine
from schemas.pseudonym import Pseudonymiser
from schemas.topics import events_topic
from tests.support.consumers import landed_count, service
from tests.support.events import encode, enrollment
from tests.support.kafka import publish
from tests.support.nightly import appended_days, load_days
from warehouse.erasure import ErasureRequestError, ErasureResult, erase_person, pseudonyms_of

pytestmark = pytest.mark.integration

OTHERS = 4


@dataclass(frozen=True)
class Landed:
    partners: dict[str, str]
    database_url: str
    id_number: str
    first_key: bytes


def _tables_with_person(conn: psycopg.Connection) -> list[str]:
    return [t for (t,) in conn.execute(
        "SELECT table_schema || '.' || table_name FROM information_schema.columns"
        " WHERE column_name = 'person' AND table_schema IN ('staging', 'warehouse')"
        " AND table_name NOT IN ('erased_persons', 'enrollment_canonical', 'subsidy_list')")]


def _rows_of(database_url: str, persons: list[str]) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        return {t: (conn.execute(f"SELECT count(*) FROM {t} WHERE person = ANY(%s)",
                                 (persons,)).fetchone() or (0,))[0]
                for t in _tables_with_person(conn)}


def _every_row_as_text(database_url: str) -> str:
    with psycopg.connect(database_url) as conn:
        tables = conn.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables"
            " WHERE table_schema IN ('staging', 'warehouse')").fetchall()
        return "\n".join(str(row[0]) for (t,) in tables
                         for row in conn.execute(f"SELECT t::text FROM {t} t"))


def _load(database_url: str, run: str) -> None:
    load_days(database_url, appended_days(database_url), run)


@pytest.fixture
def landed_and_loaded(kafka_bootstrap, database_url, new_partners, seeded) -> Landed:
    """Two enrollments of one person and one each of four others, landed under key k1, loaded."""
    partners = new_partners("training_platform")
    pid = partners["training_platform"]
    events = [enrollment(pid, n) for n in range(OTHERS + 2)]
    id_number = events[0]["data"]["learner"]["id_number"]
    events[1]["data"]["learner"]["id_number"] = id_number.lower()  # one person, two spellings
    publish(kafka_bootstrap, events_topic(pid), [encode(e) for e in events])
    first_key = seeded.key()
    service(kafka_bootstrap, database_url, partners, Pseudonymiser({"k1": first_key}, "k1"),
            group_id=f"first-{pid}").run(until_caught_up=True)
    _load(database_url, "first")
    return Landed(partners, database_url, id_number, first_key)


def _rotated(first_key: bytes) -> Pseudonymiser:
    # The second key follows from the first, as the run's seed drew it.
    return Pseudonymiser({"k1": first_key, "k2": hashlib.sha256(first_key).digest()}, "k2")


def _erase(world: Landed, keys: Pseudonymiser) -> ErasureResult:
    engine = make_engine(world.database_url)
    try:
        return erase_person(engine, pseudonyms=pseudonyms_of(keys, "resident_id", world.id_number),
                            id_type="resident_id", requested_by="dpo@city",
                            reason="PIPL art. 47 request 2026-118")
    finally:
        engine.dispose()


def test_an_erased_person_stays_gone_after_a_replay_and_a_nightly_rerun(
        landed_and_loaded, kafka_bootstrap):
    world = landed_and_loaded
    keys = _rotated(world.first_key)
    persons = [keys.person_under(k, "resident_id", world.id_number) for k in keys.key_ids]
    before = _rows_of(world.database_url, persons)
    assert before["staging.events"] == 2 and before["warehouse.fact_enrollment"] == 2
    assert before["warehouse.dim_person"] == 1

    result = _erase(world, keys)
    assert result.pseudonyms == 2
    assert result.rows_removed["staging.events"] == 2
    gone = _rows_of(world.database_url, persons)
    assert set(gone.values()) == {0}

    # A new event about them, then the whole topic again, read by a consumer under the newer
    # key in a fresh group ...
    late = enrollment(world.partners["training_platform"], 100)
    late["data"]["learner"]["id_number"] = world.id_number
    publish(kafka_bootstrap, events_topic(world.partners["training_platform"]), [encode(late)])
    service(kafka_bootstrap, world.database_url, world.partners, keys,
            group_id=f"fresh-{min(world.partners.values())}").run(until_caught_up=True)
    # ... then the night again.
    _load(world.database_url, "rerun")

    assert set(_rows_of(world.database_url, persons).values()) == {0}
    assert landed_count(world.database_url) == OTHERS
    with psycopg.connect(world.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM warehouse.fact_enrollment").fetchone() == (
            OTHERS,)


def test_the_erasure_record_holds_who_when_why_and_no_plaintext(landed_and_loaded):
    world = landed_and_loaded
    keys = _rotated(world.first_key)

    _erase(world, keys)

    with psycopg.connect(world.database_url) as conn:
        record = conn.execute(
            "SELECT requested_by, reason, erased_at IS NOT NULL, id_type, rows_removed"
            " FROM staging.erasures").fetchall()
        erased = conn.execute(
            "SELECT key_id, person FROM staging.erased_persons ORDER BY key_id").fetchall()
    assert [r[:4] for r in record] == [
        ("dpo@city", "PIPL art. 47 request 2026-118", True, "resident_id")]
    assert record[0][4]["warehouse.fact_enrollment"] == 2
    assert erased == [(k, keys.person_under(k, "resident_id", world.id_number))
                      for k in ("k1", "k2")]
    everything = _every_row_as_text(world.database_url)
    for form in (world.id_number, world.id_number.lower(), world.id_number[:17]):
        assert form not in everything


def test_erasing_a_person_twice_records_both_requests(landed_and_loaded):
    world = landed_and_loaded
    keys = _rotated(world.first_key)

    first = _erase(world, keys)
    second = _erase(world, keys)

    assert first.erasure_id != second.erasure_id
    assert second.rows_removed["staging.events"] == 0


def test_a_malformed_number_is_refused_without_echoing_it(landed_and_loaded):
    world = landed_and_loaded
    wrong = world.id_number[:17] + ("1" if world.id_number[17] != "1" else "2")

    with pytest.raises(ErasureRequestError) as refused:
        pseudonyms_of(_rotated(world.first_key), "resident_id", wrong)

    assert wrong[:17] not in str(refused.value)
    assert "checksum" in str(refused.value)


@pytest.mark.parametrize("pseudonyms", [
    {},                                          # nobody
    {"k1": "330106198808081234"},                # an ID number where a pseudonym belongs
    {"k1": "AB" * 32},                           # not as the consumer writes pseudonyms
])
def test_a_request_that_does_not_name_pseudonyms_erases_nothing(landed_and_loaded, pseudonyms):
    world = landed_and_loaded
    engine = make_engine(world.database_url)
    try:
        with pytest.raises(ErasureRequestError):
            erase_person(engine, pseudonyms=pseudonyms, id_type="resident_id",
                         requested_by="dpo@city", reason="request 2026-120")
    finally:
        engine.dispose()

    assert landed_count(world.database_url) == OTHERS + 2
    with psycopg.connect(world.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM staging.erasures").fetchone() == (0,)
