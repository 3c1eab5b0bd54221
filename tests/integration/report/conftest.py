"""A loaded simulated week to report on, and headless Chromium to look at the report with."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import pytest

# The week the warehouse tests reconcile: the report shows the same faulty partners.
from tests.integration.warehouse.conftest import (  # noqa: F401
    FAULTS,
    SimulatedWeek,
    simulated_week,
)
from tests.support.nightly import load_days

# Three times the warehouse week's injected cases: the report's tests need one day with
# refusals, duplicates and at least two kinds of finding, and with the warehouse week's
# counts (a dozen refusals and a dozen findings over seven days) one seed in many had none.
REPORT_FAULTS = replace(
    FAULTS, malformed=9, schema_violations=9, bad_checksums=6, foreign_source=6,
    forbidden_types=6, missing=9, cross_platform_enrollments=12, shared_certificate_numbers=6,
    double_subsidy_claims=9)


@dataclass(frozen=True)
class LoadedWeek:
    database_url: str
    days: list[date]

    @property
    def last_day(self) -> date:
        return self.days[-1]


@pytest.fixture
def loaded_week(simulated_week: Callable[..., SimulatedWeek]) -> LoadedWeek:  # noqa: F811
    week = simulated_week(events=900, faults=REPORT_FAULTS)
    load_days(week.database_url, week.days, "report")
    return LoadedWeek(week.database_url, week.days)


CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run")


@pytest.fixture(scope="session")
def chromium() -> str:
    """The Debian chromium binary; CI must have it, a developer's machine may not."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        message = "chromium is not installed (apt-get install -y chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def run_chromium(binary: str, page: Path, profile: Path, *args: str) -> str:
    """Open the page in a fresh headless profile; returns what Chromium printed."""
    finished = subprocess.run(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
        capture_output=True, text=True, timeout=120, check=True)
    return finished.stdout


@dataclass
class Chart:
    chart_id: str
    marks: list[dict[str, str]]


class RenderedReport(HTMLParser):
    """The parts of the rendered DOM the tests look at: charts, their marks and the headline."""

    def __init__(self, dom: str) -> None:
        super().__init__()
        self.charts: list[Chart] = []
        self.figures: dict[str, str] = {}
        self.external: list[str] = []
        self._figure: str | None = None
        self.feed(dom)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        classes = attributes.get("class", "").split()
        if tag == "svg" and "chart" in classes:
            self.charts.append(Chart(attributes.get("id", ""), []))
        elif "mark" in classes and self.charts:
            self.charts[-1].marks.append(attributes)
        if "data-figure" in attributes:
            self._figure = attributes["data-figure"]
        for name in ("src", "href"):
            if attributes.get(name, "").startswith(("http:", "https:", "//")):
                self.external.append(attributes[name])

    def handle_data(self, data: str) -> None:
        if self._figure is not None:
            self.figures[self._figure] = data.strip()
            self._figure = None
