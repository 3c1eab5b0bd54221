"""The intended state of nightly_sync is applied to Airflow, and the operator pages follow it."""

from __future__ import annotations

import httpx
import pytest

from infra.airflow import apply_nightly_sync_state, nightly_sync_paused
from tests.conftest import TEST_SERVICES
from tests.integration.portal.conftest import PASSWORD, LiveServer, Logins

pytestmark = pytest.mark.integration


def _overview(live: LiveServer) -> dict:
    with httpx.Client(base_url=live.url, timeout=60) as client:
        token = client.get("/login").text.split('name="csrf_token" value="')[1].split('"')[0]
        client.post("/login", data={"username": Logins.users["operator"], "password": PASSWORD,
                                    "csrf_token": token})
        return client.get("/api/operator/overview").json()


def test_the_setting_pauses_or_unpauses_nightly_sync_and_the_portal_shows_it(
        portal_server: LiveServer, nightly_run: str) -> None:
    active = TEST_SERVICES.model_copy(update={"nightly_sync_active": True})
    try:
        assert apply_nightly_sync_state(active) == "active"
        assert nightly_sync_paused(active) is False
        running = _overview(portal_server)
        assert running["nightly_sync_paused"] is False
        assert "nightly_sync_paused" not in {a["kind"] for a in running["alerts"]}
        assert running["runs"][0]["state"] == "success"
    finally:
        assert apply_nightly_sync_state(TEST_SERVICES) == "paused"
    assert nightly_sync_paused(TEST_SERVICES) is True
    paused = _overview(portal_server)
    assert paused["nightly_sync_paused"] is True
    assert {"kind": "nightly_sync_paused", "severity": "warning"}.items() <= next(
        a for a in paused["alerts"] if a["kind"] == "nightly_sync_paused").items()
