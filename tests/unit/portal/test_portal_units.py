"""The portal's settings, its Airflow plugin and its alerts, without services."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from pydantic import SecretStr, ValidationError

from adapters.settings import PortalSettings
from portal import models as m
from portal.operations import alerts
from portal.web import BadRequest, day_range, local_target


def test_cookies_are_secure_over_tls_or_when_a_proxy_terminates_it(tmp_path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    assert not PortalSettings().secure_cookies
    assert PortalSettings(tls_certfile=cert, tls_keyfile=key).secure_cookies
    assert PortalSettings(cookie_secure=True).secure_cookies
    with pytest.raises(ValidationError, match="go together"):
        PortalSettings(tls_certfile=cert)


def test_several_workers_need_one_session_key() -> None:
    with pytest.raises(ValidationError, match="SESSION_SECRET"):
        PortalSettings(workers=2)
    assert PortalSettings(workers=2, session_secret=SecretStr("k" * 32)).workers == 2


def test_a_downloaded_cell_never_starts_a_spreadsheet_formula() -> None:
    from portal.pages import _cell

    assert [_cell(v) for v in ("=HYPERLINK(1)", "+1", "-2", "@x", "plain", -3, None)] == [
        "'=HYPERLINK(1)", "'+1", "'-2", "'@x", "plain", -3, ""]


def test_secrets_never_show_in_the_settings_text() -> None:
    settings = PortalSettings(session_secret=SecretStr("s3cret-key-value"),
                              database_url=SecretStr("postgresql://u:pa55word@h/db"))
    shown = f"{settings!r} {settings} {settings.model_dump_json()}"
    assert "s3cret-key-value" not in shown and "pa55word" not in shown


def test_after_a_form_the_reader_goes_only_to_a_path_of_this_site() -> None:
    assert local_target("/partner/x?day=1", "/") == "/partner/x?day=1"
    for foreign in ("https://evil.example/", "//evil.example/", "/\\evil.example", "", None):
        assert local_target(foreign, "/home") == "/home"


def test_a_day_range_is_bounded_and_ordered() -> None:
    assert day_range(None, None, date(2026, 11, 30), 7) == (date(2026, 11, 24),
                                                             date(2026, 11, 30))
    with pytest.raises(BadRequest):
        day_range(date(2026, 12, 2), date(2026, 12, 1), None, 7)
    with pytest.raises(BadRequest):
        day_range(date(2025, 1, 1), date(2026, 12, 1), None, 7)


def test_the_airflow_plugin_links_airflows_navigation_to_the_portal(monkeypatch) -> None:
    import importlib
    from importlib.metadata import entry_points

    monkeypatch.setenv("SKILLSYNC_PORTAL_PUBLIC_URL", "https://portal.example")
    (entry,) = [e for e in entry_points(group="airflow.plugins") if e.name == "skillsync_portal"]
    module = importlib.reload(importlib.import_module(entry.module))
    plugin = getattr(module, entry.attr)
    assert plugin.external_views == [{"name": "skillsync portal", "href": "https://portal.example",
                                      "destination": "nav", "category": "browse"}]


def _run(state: str) -> m.NightlyRun:
    return m.NightlyRun(run_id="r", run_type="scheduled", state=state, business_day=None,
                        logical_date=None, start_date=None, end_date=None, failed_tasks=[],
                        airflow_url="x")


@pytest.mark.parametrize(("active", "severity"), [(True, "error"), (False, "warning")])
def test_a_paused_nightly_sync_is_an_alert_the_more_serious_when_nights_should_run(
        active: bool, severity: str) -> None:
    # 10:00 in Hangzhou on 1 December: the night of 30 November should be loaded.
    now = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    found = alerts(settings=PortalSettings(nightly_sync_active=active), now=now, paused=True,
                   runs=[_run("failed")], partners=[], last_loaded=date(2026, 11, 29),
                   failures=[], error_days={}, lag_error=None)
    kinds = {a.kind: a.severity for a in found}
    assert kinds == {"nightly_sync_paused": severity, "night_failed": "error",
                     "warehouse_stale": "error"}
    quiet = alerts(settings=PortalSettings(), now=now, paused=False, runs=[_run("success")],
                   partners=[], last_loaded=date(2026, 11, 30), failures=[], error_days={},
                   lag_error=None)
    assert quiet == []
