"""A loaded week, its nightly run in Airflow, accounts of each kind and the portal serving them."""

from __future__ import annotations

import logging
import os
import re
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any, ClassVar

import psycopg
import pytest
from pydantic import SecretStr

from adapters.settings import (
    DatabaseSettings,
    IngestSettings,
    KafkaSettings,
    PortalSettings,
    Settings,
)
from partners.simulate import simulate
from portal import accounts
from portal.db import Database
from portal.web import Portal
from schemas.partners import PartnerRegistry
from schemas.topics import EVENTS_TOPIC_PATTERN, events_topic, rejects_topic
from tests.conftest import TEST_SERVICES, Services, _db_url
from tests.integration.warehouse.conftest import FAULTS, ROLES
from tests.support.kafka import fresh_topics
from tests.support.nightly import (
    SENDER_CLOCK,
    appended_days,
    land_simulation,
    load_days,
    registry_of,
    run_moment,
)
from tests.support.seed import Seeded, derived_seed

PASSWORD = "portal test password"
DISTRICTS = ("330106", "330108", "330105", "330106", "330108")
SCREENSHOTS = TEST_SERVICES.state_dir / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


@dataclass(frozen=True)
class PortalWeek:
    database_url: str
    partners: dict[str, str]  # partner id -> role
    days: list[date]
    group: str
    topic_pattern: str

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.database_url) as conn:
            return conn.execute(sql, params).fetchall()

    @property
    def refusing_partners(self) -> list[str]:
        """Partners with refusals, most first."""
        return [p for (p,) in self.rows(
            "SELECT partner_id FROM staging.rejected GROUP BY 1 ORDER BY count(*) DESC, 1")]

    @property
    def districts(self) -> list[str]:
        """Agency districts holding certificates, most first."""
        return [a.removeprefix("agency_") for (a,) in self.rows(
            "SELECT a.agency FROM warehouse.fact_certificate c JOIN warehouse.agency_district a"
            " USING (district_code) GROUP BY 1 ORDER BY count(*) DESC, 1")]


@pytest.fixture(scope="package")
def portal_week(services: Services, migrated_template: str, pseudonymiser) -> Iterator[PortalWeek]:
    """A week of five simulated partners with faults, landed through Kafka and loaded."""
    draws = Seeded(derived_seed("portal week"))
    name = f"portal_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(services.admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {migrated_template}")
    url = _db_url(services.admin_url, name)
    partners = {draws.partner_id("p"): role for role in ROLES}
    fresh_topics(services.kafka_bootstrap, [t for p in partners
                                            for t in (events_topic(p), rejects_topic(p))],
                 SENDER_CLOCK)
    first = draws.today - timedelta(days=17)
    # Partners in different districts, so two agencies each have certificates to see.
    spread = PartnerRegistry({p.partner_id: replace(p, district_code=district)
                              for p, district in zip(registry_of(partners), DISTRICTS,
                                                     strict=False)})
    simulation = simulate(first, 900, draws.rng.getrandbits(32), FAULTS, 7, registry=spread)
    land_simulation(simulation, bootstrap=services.kafka_bootstrap, database_url=url,
                    partners=partners, pseudonymiser=pseudonymiser)
    days = appended_days(url)
    load_days(url, days, "portal")
    pattern = "^skills\\.events\\.(" + "|".join(sorted(partners)) + ")$"
    yield PortalWeek(url, partners, days, f"nightly-{min(partners)}", pattern)
    with psycopg.connect(services.admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="package")
def nightly_run(portal_week: PortalWeek, airflow_db: Path,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """nightly_sync run once by Airflow for the week's last day; its run id."""
    from airflow.dag_processing.dagbag import DagBag

    dags = Path(__file__).resolve().parents[3] / "dags"
    with pytest.MonkeyPatch.context() as patch:
        for key, value in {"SKILLSYNC_DATABASE_URL": portal_week.database_url,
                           "KAFKA_BOOTSTRAP_SERVERS": TEST_SERVICES.kafka_bootstrap
                           if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
                           else os.environ["KAFKA_BOOTSTRAP_SERVERS"],
                           "SKILLSYNC_CONSUMER_GROUP": portal_week.group,
                           "SKILLSYNC_TOPIC_PATTERN": portal_week.topic_pattern,
                           "SKILLSYNC_REPORT_DIR": str(tmp_path_factory.mktemp("reports"))
                           }.items():
            patch.setenv(key, value)
        day = portal_week.days[-1]
        dag = DagBag(dag_folder=str(dags / "nightly_sync.py")).dags["nightly_sync"]
        run = dag.test(logical_date=run_moment(Seeded(derived_seed("portal run")).rng),
                       run_conf={"business_day": day.isoformat()})
    assert str(run.state) == "success"
    yield run.run_id


@dataclass(frozen=True)
class Logins:
    partner: str
    other_partner: str
    district: str
    other_district: str

    users: ClassVar[dict[str, str]] = {
        "partner": "partner-user", "other_partner": "other-partner-user",
        "agency": "agency-user", "other_agency": "other-agency-user",
        "operator": "operator-user"}


@pytest.fixture(scope="package")
def logins(portal_week: PortalWeek) -> Logins:
    refusing, districts = portal_week.refusing_partners, portal_week.districts
    assert len(refusing) >= 2 and len(districts) >= 2, (refusing, districts)
    made = Logins(refusing[0], refusing[1], districts[0], districts[1])
    db = Database(portal_week.database_url, pool_size=1)
    try:
        with db.portal() as conn:
            for key, kind, partner, district in (
                    ("partner", "partner", made.partner, None),
                    ("other_partner", "partner", made.other_partner, None),
                    ("agency", "agency", None, made.district),
                    ("other_agency", "agency", None, made.other_district),
                    ("operator", "operator", None, None)):
                accounts.create(conn, username=Logins.users[key], kind=kind, password=PASSWORD,
                                partner_id=partner, district_code=district)
    finally:
        db.dispose()
    return made


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    settings: PortalSettings
    log: list[str]
    portal: Portal
    sections: Settings  # all of the portal's settings, its own section among them


class _Lines(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(self.format(record))


@contextmanager
def serving(settings: Settings, **uvicorn_options: Any) -> Iterator[LiveServer]:
    """The portal on a loopback port in a thread of this process; its log lines collected."""
    import uvicorn

    from adapters.logs import JsonFormatter
    from portal.web import create_app

    lines: list[str] = []
    handler = _Lines(lines)
    handler.setFormatter(JsonFormatter())
    # The portal's own loggers, whatever another library did to the root logger's handlers;
    # nothing else about them changes, since a package fixture may be torn down late.
    loggers = [logging.getLogger(n) for n in ("uvicorn.access", "uvicorn.error",
                                              "skillsync.portal")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.INFO)
    port = free_port()
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_config=None, access_log=True,
                                           **uvicorn_options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the portal did not start")
        time.sleep(0.05)
    scheme = "https" if "ssl_certfile" in uvicorn_options else "http"
    try:
        yield LiveServer(f"{scheme}://127.0.0.1:{port}", settings.portal, lines,
                         app.state.portal, settings)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)


def portal_settings(week: PortalWeek, **overrides: Any) -> Settings:
    return portal_settings_for(week.database_url, **overrides)


def portal_settings_for(database_url: str, *, consumer_group: str = "skillsync-ingest",
                        topic_pattern: str = EVENTS_TOPIC_PATTERN, **overrides: Any) -> Settings:
    """The portal's settings for a test: these databases and the tests' broker; `overrides`
    are the portal section's."""
    values: dict[str, Any] = {
        "airflow_database_url": SecretStr(
            os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]),
        "airflow_url": "http://airflow.test:8080",
        "session_secret": SecretStr(secrets.token_urlsafe(32)),
        "data_docs_dir": TEST_SERVICES.state_dir / "gx" / "data_docs",
        "page_size": 25,
    }
    return Settings(
        portal=PortalSettings(**{**values, **overrides}),
        database=DatabaseSettings(url=SecretStr(database_url)),
        kafka=KafkaSettings(bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
                            or TEST_SERVICES.kafka_bootstrap),
        ingest=IngestSettings(group_id=consumer_group, topic_pattern=topic_pattern))


@pytest.fixture(scope="package")
def portal_server(portal_week: PortalWeek, logins: Logins,
                  nightly_run: str) -> Iterator[LiveServer]:
    # Lag as the week's consumer group sees the week's topics.
    with serving(portal_settings(portal_week, consumer_group=portal_week.group,
                                 topic_pattern=portal_week.topic_pattern)) as live:
        yield live


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright; no browser is ever downloaded."""
    if not Path(CHROMIUM).exists():
        message = "chromium is not installed (apt-get install -y chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def screenshot(page: Any, name: str) -> Path:
    """A full-page screenshot under .local/test/screenshots, for a person to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{re.sub(r'[^a-z0-9_-]+', '-', name.lower())}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page: Any, base: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#sign-in")
    page.wait_for_load_state()


SignIn = Callable[[Any, str, str], None]
