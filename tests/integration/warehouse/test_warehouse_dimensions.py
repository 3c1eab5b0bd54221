"""Reference dimensions follow the shipped reference data and partners registry."""

from __future__ import annotations

from datetime import date

import psycopg
import pytest

from schemas import reference
from schemas.partners import load_registry
from tests.support.nightly import load_days

pytestmark = pytest.mark.integration


def test_a_load_describes_every_registered_partner_and_division(database_url):
    load_days(database_url, [date(2026, 11, 2)], "dims-1")
    with psycopg.connect(database_url) as conn:
        partners = {row[0]: row[1:] for row in conn.execute(
            "SELECT partner_id, name, role, district_code FROM warehouse.dim_partner")}
        divisions = conn.execute("SELECT count(*) FROM warehouse.dim_district").fetchone()
    assert partners == {p.partner_id: (p.name, p.role, p.district_code)
                        for p in load_registry()}
    assert divisions == (len(reference.divisions()),)


def test_a_partner_the_registry_has_dropped_keeps_its_row(database_url):
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO warehouse.dim_partner VALUES ('retired-partner', 'Old', "
                     "'training_platform', '330106')")
    load_days(database_url, [date(2026, 11, 2)], "dims-2")
    with psycopg.connect(database_url) as conn:
        kept = conn.execute("SELECT name FROM warehouse.dim_partner "
                            "WHERE partner_id = 'retired-partner'").fetchone()
    assert kept == ("Old",)
