"""The operator's view of the pipeline: lag, freshness, nights, validation, alerts, metrics."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from adapters.ingest_lag import broker_positions
from adapters.settings import KafkaSettings, PortalSettings
from portal import models as m
from portal import queries as q
from portal.db import Database, Scope
from schemas.days import SHANGHAI
from schemas.i18n import gettext
from schemas.topics import partner_of_topic

log = logging.getLogger("skillsync.portal")

OPERATOR = Scope("skillsync_operator")
NIGHTLY_DAG = "nightly_sync"
RUNS_SHOWN = 14
VALIDATION_DAYS = 7
# More records than this behind on the broker is worth an operator's look.
LAG_ALERT_RECORDS = 10_000
# A night's load is expected once its run had time to finish (02:00 start, 6 h sensor).
LOAD_EXPECTED_BY = time(9, 0)


@dataclass
class LagSample:
    """The broker's end offsets, as last read (None: never read, or not configured)."""
    positions: dict[tuple[str, int], int] | None = None
    sampled_at: datetime | None = None
    error: str | None = None


@dataclass
class LagSampler:
    """Reads the broker's end offsets in the background, so no page waits on Kafka."""
    kafka: KafkaSettings | None  # None: the portal was given no broker, lag is not shown
    topic_pattern: str
    refresh_s: float
    sample: LagSample = field(default_factory=LagSample)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @property
    def configured(self) -> bool:
        return self.kafka is not None

    def read_once(self) -> LagSample:
        assert self.kafka is not None
        try:
            positions = broker_positions(self.kafka, topic_pattern=self.topic_pattern)
            self.sample = LagSample(positions, datetime.now(UTC))
        except Exception as exc:  # an unavailable broker: keep the last figures, say so
            log.warning("broker offsets not read: %s", type(exc).__name__)
            self.sample = LagSample(self.sample.positions, self.sample.sampled_at,
                                    type(exc).__name__)
        return self.sample

    def start(self) -> None:
        if not self.configured or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="lag-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.read_once()
            self._stop.wait(self.refresh_s)


def partners_ingest(db: Database, sample: LagSample, group: str,
                    today: date) -> list[m.PartnerIngest]:
    with db.scoped(OPERATOR) as conn:
        positions = conn.execute(q.CONSUMER_POSITIONS, {"group": group}).all()
        refused: dict[str, int] = {p: n for p, n in conn.execute(q.REFUSALS_TODAY,
                                                                  {"day": today}).all()}
    landed: dict[tuple[str, int], int] = {}
    last: dict[str, datetime] = {}
    for topic, partition, offset, updated_at in positions:
        landed[(topic, partition)] = offset
        partner = _partner(topic)
        if partner is not None:
            last[partner] = max(last.get(partner, updated_at), updated_at)
    lag: dict[str, int] = {}
    for (topic, partition), end in (sample.positions or {}).items():
        partner = _partner(topic)
        if partner is not None:
            lag[partner] = lag.get(partner, 0) + max(0, end - landed.get((topic, partition), 0))
    partners = sorted(set(last) | set(lag) | set(refused))
    return [m.PartnerIngest(partner_id=p, lag=lag.get(p) if sample.positions is not None
                            else None, last_landed_at=last.get(p),
                            refused_today=refused.get(p, 0)) for p in partners]


def _partner(topic: str) -> str | None:
    try:
        return partner_of_topic(topic)
    except ValueError:
        return None


def run_link(settings: PortalSettings, run_id: str) -> str:
    return f"{settings.airflow_url.rstrip('/')}/dags/{NIGHTLY_DAG}/runs/{quote(run_id, safe='')}"


def nightly_runs(db: Database, settings: PortalSettings) -> tuple[list[m.NightlyRun],
                                                                  bool | None]:
    """The last nights' runs and whether nightly_sync is paused; ([], None) without Airflow."""
    if not db.has_airflow:
        return [], None
    try:
        with db.airflow() as conn:
            rows = conn.execute(q.NIGHTLY_RUNS, {"dag_id": NIGHTLY_DAG,
                                                 "limit": RUNS_SHOWN}).mappings().all()
            paused = conn.execute(q.DAG_PAUSED, {"dag_id": NIGHTLY_DAG}).scalar()
    except SQLAlchemyError as exc:
        log.warning("Airflow's metadata database not read: %s", type(exc).__name__)
        return [], None
    runs = [m.NightlyRun(**{k: v for k, v in row.items() if k != "failed_tasks"},
                         failed_tasks=(row["failed_tasks"] or "").split(",")
                         if row["failed_tasks"] else [],
                         airflow_url=run_link(settings, row["run_id"])) for row in rows]
    return runs, paused


def overview(db: Database, settings: PortalSettings, sampler: LagSampler, consumer_group: str,
             now: datetime) -> m.Overview:
    today = now.astimezone(SHANGHAI).date()
    partners = partners_ingest(db, sampler.sample, consumer_group, today)
    runs, paused = nightly_runs(db, settings)
    with db.scoped(OPERATOR) as conn:
        loads = [m.LoadRun(**r) for r in conn.execute(q.LAST_LOADS,
                                                      {"limit": RUNS_SHOWN}).mappings()]
        failures = [m.ValidationFailure(**r) for r in conn.execute(
            q.VALIDATION_FAILURES, {"since": today - timedelta(days=VALIDATION_DAYS),
                                    "limit": 200}).mappings()]
        errors = conn.execute(q.ERROR_DISCREPANCIES,
                              {"since": today - timedelta(days=1)}).all()
    last_loaded = max((load.business_day for load in loads), default=None)
    found = alerts(settings=settings, now=now, paused=paused, runs=runs, partners=partners,
                   last_loaded=last_loaded, failures=failures,
                   error_days={d: n for d, n in errors}, lag_error=sampler.sample.error)
    return m.Overview(nightly_sync_paused=paused,
                      nightly_sync_intended_active=settings.nightly_sync_active,
                      lag_sampled_at=sampler.sample.sampled_at, last_loaded_day=last_loaded,
                      partners=partners, runs=runs, loads=loads, validation_failures=failures,
                      alerts=found)


def alerts(*, settings: PortalSettings, now: datetime, paused: bool | None,
           runs: list[m.NightlyRun], partners: list[m.PartnerIngest], last_loaded: date | None,
           failures: list[m.ValidationFailure], error_days: dict[date, int],
           lag_error: str | None) -> list[m.Alert]:
    """What needs an operator now, most serious first; computed from the figures shown."""
    found: list[m.Alert] = []
    if paused:
        found.append(m.Alert(
            severity="error" if settings.nightly_sync_active else "warning",
            kind="nightly_sync_paused", subject=NIGHTLY_DAG,
            message=gettext("nightly_sync is paused: no night runs on schedule until it is"
                            " unpaused.")))
    elif paused is None:
        found.append(m.Alert(severity="warning", kind="airflow_unreachable",
                             subject=NIGHTLY_DAG,
                             message=gettext("Airflow's metadata database could not be read.")))
    if runs and runs[0].state == "failed":
        found.append(m.Alert(severity="error", kind="night_failed", subject=runs[0].run_id,
                             message=gettext("The last nightly run failed.")))
    local = now.astimezone(SHANGHAI)
    expected = local.date() - timedelta(days=1 if local.time() >= LOAD_EXPECTED_BY else 2)
    if last_loaded is None or last_loaded < expected:
        found.append(m.Alert(severity="error", kind="warehouse_stale",
                             subject=str(last_loaded or "-"),
                             message=gettext("The warehouse has not loaded business day"
                                             " %(day)s yet.") % {"day": expected}))
    for failure in failures:
        if failure.severity == "blocking":
            found.append(m.Alert(severity="error", kind="validation_blocking",
                                 subject=f"{failure.business_day} {failure.check_name}",
                                 message=gettext("A blocking expectation failed: %(n)s of"
                                                 " %(of)s rows unexpected.")
                                 % {"n": failure.unexpected_count,
                                    "of": failure.element_count}))
    for partner in partners:
        if partner.lag is not None and partner.lag > LAG_ALERT_RECORDS:
            found.append(m.Alert(severity="warning", kind="consumer_lag",
                                 subject=partner.partner_id,
                                 message=gettext("%(n)s records not landed yet.")
                                 % {"n": partner.lag}))
    if lag_error:
        found.append(m.Alert(severity="warning", kind="broker_unreachable", subject="kafka",
                             message=gettext("The broker's offsets could not be read.")))
    for day, count in sorted(error_days.items(), reverse=True):
        found.append(m.Alert(severity="warning", kind="discrepancy_errors", subject=str(day),
                             message=gettext("%(n)s discrepancies of severity error.")
                             % {"n": count}))
    return sorted(found, key=lambda a: a.severity != "error")


class OverviewCollector(Collector):
    """The operator overview as Prometheus gauges, computed when scraped."""

    def __init__(self, read: Any) -> None:
        self._read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        view: m.Overview = self._read()
        lag = GaugeMetricFamily("skillsync_partner_lag_records",
                                "Records on a partner's topic not landed yet", labels=["partner"])
        landed = GaugeMetricFamily("skillsync_partner_last_landed_timestamp_seconds",
                                   "When the consumers last landed a batch of the partner",
                                   labels=["partner"])
        for p in view.partners:
            if p.lag is not None:
                lag.add_metric([p.partner_id], p.lag)
            if p.last_landed_at is not None:
                landed.add_metric([p.partner_id], p.last_landed_at.timestamp())
        yield lag
        yield landed
        if view.nightly_sync_paused is not None:
            yield GaugeMetricFamily("skillsync_nightly_sync_paused",
                                    "1 when nightly_sync is paused in Airflow",
                                    value=int(view.nightly_sync_paused))
        yield GaugeMetricFamily("skillsync_nightly_sync_intended_active",
                                "1 when this deployment should run nights",
                                value=int(view.nightly_sync_intended_active))
        if view.runs:
            yield GaugeMetricFamily("skillsync_nightly_last_run_failed",
                                    "1 when the latest nightly_sync run failed",
                                    value=int(view.runs[0].state == "failed"))
        if view.last_loaded_day is not None:
            start = datetime.combine(view.last_loaded_day, time(0), SHANGHAI)
            yield GaugeMetricFamily("skillsync_warehouse_last_loaded_day_timestamp_seconds",
                                    "Start of the latest business day loaded (Asia/Shanghai)",
                                    value=start.timestamp())
        failed = GaugeMetricFamily("skillsync_validation_failed_checks",
                                   f"Failed checks in the last {VALIDATION_DAYS} days",
                                   labels=["severity"])
        for severity in ("blocking", "warning"):
            failed.add_metric([severity], sum(1 for f in view.validation_failures
                                              if f.severity == severity))
        yield failed
        alerts = GaugeMetricFamily("skillsync_alerts", "Conditions the operator pages raise",
                                   labels=["severity"])
        for severity in ("error", "warning"):
            alerts.add_metric([severity], sum(1 for a in view.alerts if a.severity == severity))
        yield alerts
