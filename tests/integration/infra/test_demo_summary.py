"""The demo's closing summary counts the night's findings as the simulator's ground truth does."""

from __future__ import annotations

import json

import psycopg
import pytest

from infra.summary import print_summary
from tests.support.seed import Seeded

pytestmark = pytest.mark.integration


def _gap(day: str, partner: str, family: str, missing: str) -> dict[str, str | list[str]]:
    return {"kind": "control_total_gap", "business_day": day, "partner": partner,
            "family": family, "ids": [missing]}


def test_gaps_of_two_partners_in_one_family_on_one_day_are_two_findings(
        database_url: str, seeded: Seeded, capsys: pytest.CaptureFixture[str]) -> None:
    """Once the demo said MISMATCH for a night that had found both of its injected gaps: two
    district bureaus each withheld a withdrawal the same day, and the summary counted one."""
    day = seeded.today.isoformat()
    partners = [seeded.partner_id(), seeded.partner_id()]
    gaps = [_gap(day, p, "enrollment.withdrawn", f"{p}-missing") for p in partners]
    with psycopg.connect(database_url) as conn:
        for gap in gaps:
            conn.execute(
                "INSERT INTO warehouse.discrepancy (business_day, kind, reference, severity,"
                " partner_id, event_id, detail) VALUES (%s, %s, %s, 'error', %s, %s, %s)",
                (day, gap["kind"], gap["family"], gap["partner"], f"{gap['partner']}-totals",
                 json.dumps({"missing": gap["ids"]})))
    manifest = {"landed": {}, "rejected": [], "duplicates": [], "discrepancies": gaps,
                "subsidy_eligible_certificates": []}

    matches = print_summary(database_url, seeded.today, manifest)

    lines = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert ["control_total_gap", "2", "2", "ok"] in lines
    assert matches
