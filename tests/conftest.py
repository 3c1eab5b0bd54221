"""Session fixtures: real Kafka and PostgreSQL for the tests, on ports of their own."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import psycopg
import pytest
from hypothesis.configuration import set_hypothesis_home_dir

from infra import airflow as local_airflow
from infra import postgres as local_postgres
from infra.kafka import service as local_kafka
from infra.local import REPO_ROOT, LocalServices
from schemas.partners import REGISTRY_PATH
from tests.support.kafka import fresh_topics
from tests.support.seed import SEED_VARIABLE, Seeded, derived_seed, run_seed

# Tests run their own services beside a developer's demo, so neither disturbs the other.
# Two checkouts testing at once on one machine give one of them another port offset.
_BEFORE = pytest.StashKey[dict[Path, int]]()
_PORT_OFFSET = int(os.environ.get("SKILLSYNC_TEST_PORT_OFFSET", "0"))
TEST_SERVICES = LocalServices(
    state_dir=REPO_ROOT / ".local" / "test", kafka_port=19192 + _PORT_OFFSET,
    kafka_controller_port=19193 + _PORT_OFFSET, pg_port=15532 + _PORT_OFFSET,
    airflow_port=18180 + _PORT_OFFSET,
)
_EXTERNAL_KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
_EXTERNAL_DB = os.environ.get("SKILLSYNC_DATABASE_URL")
# One template per test session: sessions sharing the services must not drop each other's.
TEMPLATE_DB = f"skillsync_template_{os.getpid()}"

# Airflow reads its configuration when first imported: point it at the test services now.
os.environ.update({k: v for k, v in local_airflow.environment(TEST_SERVICES, base={}).items()
                   if k.startswith("AIRFLOW")})
# Whatever the code under test writes by default (reports, Data Docs, examples found by
# hypothesis) goes under the tests' own folder, never into a developer's demo state.
os.environ["SKILLSYNC_REPORT_DIR"] = str(TEST_SERVICES.state_dir / "reports")
os.environ["SKILLSYNC_GX_DIR"] = str(TEST_SERVICES.state_dir / "gx")
# The shipped registry's partners, subscribed to nothing: a load in a test writes no sync feed
# changes (and nightly_sync waits for no relay) unless the test names its own subscribers.
_UNSUBSCRIBED_REGISTRY = TEST_SERVICES.state_dir / "partners-unsubscribed.toml"
_UNSUBSCRIBED_REGISTRY.parent.mkdir(parents=True, exist_ok=True)
_UNSUBSCRIBED_REGISTRY.write_text(re.sub(r"(?m)^feeds\s*=.*\n", "", REGISTRY_PATH.read_text(
    encoding="utf-8")), encoding="utf-8")
os.environ.setdefault("SKILLSYNC_PARTNERS_REGISTRY", str(_UNSUBSCRIBED_REGISTRY))
# Hypothesis keeps more than its example database there (a cache of constants, for one).
set_hypothesis_home_dir(TEST_SERVICES.state_dir / "hypothesis")
# Folders a test run may write in (besides temporary folders outside the checkout).
_WRITABLE = (TEST_SERVICES.state_dir, REPO_ROOT / ".git", REPO_ROOT / ".venv")
_CACHES = {"__pycache__", ".mypy_cache", ".ruff_cache"}


def _files_outside_test_state() -> dict[Path, int]:
    found = {}
    for folder, subfolders, files in os.walk(REPO_ROOT):
        here = Path(folder)
        # Pruned, not just skipped: the services rewrite their folders while this walks.
        subfolders[:] = [d for d in subfolders if d not in _CACHES
                         and not any((here / d) == w for w in _WRITABLE)]
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                found[here / name] = (here / name).stat().st_mtime_ns
    return found


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_BEFORE] = _files_outside_test_state()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    before = session.config.stash.get(_BEFORE, None)
    if before is None or os.environ.get("PYTEST_XDIST_WORKER"):
        return
    after = _files_outside_test_state()
    written = sorted(str(p.relative_to(REPO_ROOT)) for p, t in after.items() if before.get(p) != t)
    if written:
        # Tests write under .local/test and temporary folders only.
        print(f"\ntests wrote outside .local/test: {written[:20]}", file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-faults", action="store_true",
                     help="also run the long fault-injection scenarios (make faults)")
    group = parser.getgroup("differential", "the night against its reference model")
    group.addoption("--weeks", type=int, default=30,
                    help="random weeks the differential test runs (make differential: 1000)")
    group.addoption("--week-seed", type=int, default=None,
                    help="replay the one week with this seed (printed by a failure)")
    group.addoption("--start", type=date.fromisoformat, default=None,
                    help="with --week-seed: the week's first day (printed by a failure)")


def pytest_report_header(config: pytest.Config) -> str:
    return f"test seed: {run_seed()} (replay: {SEED_VARIABLE}={run_seed()})"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    report = yield
    if report.failed:
        report.sections.append(("seed", f"replay: {SEED_VARIABLE}={run_seed()} "
                                        f"pytest '{item.nodeid}'"))
    return report


@pytest.fixture
def seeded(request: pytest.FixtureRequest) -> Seeded:
    """This test's draws (ids, keys, "today"), replayed by the run's seed."""
    return Seeded(derived_seed(request.node.nodeid))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-faults"):
        return
    skip = pytest.mark.skip(reason="long fault scenario: run with make faults")
    for item in items:
        # By marker, not keyword: every test under tests/fault has "fault" among its keywords.
        if item.get_closest_marker("fault"):
            item.add_marker(skip)


@dataclass(frozen=True)
class Services:
    kafka_bootstrap: str
    admin_url: str  # libpq URL of a maintenance database on the server


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    started: list[str] = []
    TEST_SERVICES.state_dir.mkdir(parents=True, exist_ok=True)
    # Two test sessions starting at once must not both spawn a broker.
    with open(TEST_SERVICES.state_dir / ".start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _EXTERNAL_DB:
            if local_postgres.status(TEST_SERVICES) != "running":
                started.append("postgres")
            local_postgres.start(TEST_SERVICES)
        if not _EXTERNAL_KAFKA:
            if local_kafka.status(TEST_SERVICES) == "stopped":
                started.append("kafka")
            local_kafka.start(TEST_SERVICES)
    admin_url = _EXTERNAL_DB or TEST_SERVICES.database_url("postgres")
    yield Services(_EXTERNAL_KAFKA or TEST_SERVICES.kafka_bootstrap,
                   admin_url.replace("+psycopg", ""))
    # Leave running what was running before; stop what this session started, unless asked
    # to keep them for the next session.
    if os.environ.get("SKILLSYNC_TEST_KEEP_SERVICES"):
        return
    if "kafka" in started:
        local_kafka.stop(TEST_SERVICES)
    if "postgres" in started:
        local_postgres.stop(TEST_SERVICES)


@pytest.fixture(scope="session")
def kafka_bootstrap(services: Services) -> str:
    return services.kafka_bootstrap


def _db_url(admin_url: str, name: str) -> str:
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def migrated_template(services: Services) -> Iterator[str]:
    """A database migrated once per session; each test gets a copy of it."""
    from warehouse.migrate import upgrade

    with psycopg.connect(services.admin_url, autocommit=True) as conn:
        for (name,) in conn.execute("SELECT datname FROM pg_database"
                                    " WHERE datname LIKE 'skillsync\\_template\\_%'").fetchall():
            # A template whose session was killed before it could drop it.
            if not Path(f"/proc/{name.rpartition('_')[2]}").exists():
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {TEMPLATE_DB}")
    upgrade(_db_url(services.admin_url, TEMPLATE_DB))
    yield TEMPLATE_DB
    with psycopg.connect(services.admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE_DB} WITH (FORCE)")


@pytest.fixture
def database_url(services: Services, migrated_template: str) -> Iterator[str]:
    """A fresh, migrated database for one test (libpq URL)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(services.admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {migrated_template}")
    yield _db_url(services.admin_url, name)
    with psycopg.connect(services.admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def new_partners(kafka_bootstrap: str, seeded: Seeded) -> Callable[..., dict[str, str]]:
    """Make partners of the given roles, with ids from the test's seed and empty topics.

    Returns {role-or-name: partner_id}; the registry the test needs is `registry_for(ids)`.
    A replayed seed names the same partners: topics an earlier run left are made anew.
    """

    def make(*roles: str, topic_overrides: dict[str, str] | None = None) -> dict[str, str]:
        from schemas.topics import events_topic, rejects_topic

        made = {role: seeded.partner_id() for role in roles}
        fresh_topics(kafka_bootstrap, [t for p in made.values()
                                       for t in (events_topic(p), rejects_topic(p))],
                     topic_overrides)
        return made

    return make


@pytest.fixture(scope="session")
def pseudonymiser():
    from schemas.pseudonym import Pseudonymiser

    key = Seeded(derived_seed("pseudonym key")).key()
    return Pseudonymiser({"t1": key}, active_key_id="t1")


@pytest.fixture(scope="session")
def airflow_db(services: Services) -> Iterator[Path]:
    """Airflow's metadata schema in the test PostgreSQL, migrated once."""
    local_airflow.migrate(TEST_SERVICES)
    yield TEST_SERVICES.airflow_home
    # Close Airflow's pooled connections before the session stops the server under them.
    from airflow import settings as airflow_settings

    airflow_settings.dispose_orm()
