"""Command line of the ingestion service: `run` and `status`."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from typing import NoReturn

from adapters import logs
from adapters.settings import (
    DatabaseSettings,
    IngestSettings,
    KafkaSettings,
    KeySettings,
    RegistrySettings,
    Settings,
    variable_of,
)
from schemas.errors import ConfigurationError

log = logging.getLogger("skillsync.consumer")
CONFIG_EXIT = 2
# Exit status when the shutdown grace period ran out before the batch in hand was drained.
FORCED_EXIT = 3
# `run --until-caught-up` ended with partitions still behind (named on stderr).
NOT_CAUGHT_UP_EXIT = 4
# Kafka or PostgreSQL did not answer at start (sysexits EX_UNAVAILABLE).
UNAVAILABLE_EXIT = 69
# The watchdog found the member wedged; a supervisor starting it again recovers (EX_TEMPFAIL).
WEDGED_EXIT = 75


def _settings(args: argparse.Namespace) -> Settings:
    """This process's settings, every section it needs read now: a bad one stops it at start."""
    try:
        return Settings.load(args.config).check("kafka", "database", "ingest")
    except ConfigurationError as exc:
        _config_error(str(exc))


def _config_error(message: str) -> NoReturn:
    # Bad configuration is not retried: stop at once and name the setting.
    print(f"skillsync-consumer: invalid configuration:\n{message}", file=sys.stderr)
    raise SystemExit(CONFIG_EXIT)


def _unavailable(message: str) -> NoReturn:
    # One line an operator can act on, instead of a client library's retries and a traceback.
    print(f"skillsync-consumer: {message}", file=sys.stderr)
    raise SystemExit(UNAVAILABLE_EXIT)


def _check_reachable(settings: Settings) -> None:
    """Stop with one line naming the setting and address if Kafka or PostgreSQL is not there."""
    from consumers.reach import kafka_unreachable, postgres_unreachable

    timeout_s = settings.ingest.startup_timeout_s
    problem = kafka_unreachable(settings.kafka.bootstrap_servers, timeout_s=timeout_s)
    if problem:
        _unavailable(f"cannot reach Kafka at {settings.kafka.bootstrap_servers} "
                     f"({variable_of(KafkaSettings, 'bootstrap_servers')}): {problem}")
    address, problem = postgres_unreachable(settings.database.libpq, timeout_s=timeout_s)
    if problem:
        _unavailable(f"cannot reach PostgreSQL at {address} "
                     f"({variable_of(DatabaseSettings, 'url')}): {problem}")


def _run(args: argparse.Namespace) -> int:
    from consumers import health
    from consumers.service import IngestService, tune_interpreter
    from consumers.watchdog import Wedged

    settings = _settings(args)
    try:
        registry = settings.registry.load()
    except ConfigurationError as exc:
        _config_error(f"{variable_of(RegistrySettings, 'file')}: {exc}")
    try:
        pseudonymiser = settings.keys.load()
    except ConfigurationError as exc:
        _config_error(f"{variable_of(KeySettings, 'pseudonym_key_file')}: {exc}")
    _check_reachable(settings)
    ingest = settings.ingest

    def _exit_wedged(reason: str) -> None:
        # From the watchdog's thread, the loop being stuck in the Kafka client: nothing
        # uncommitted is lost by leaving now, PostgreSQL's positions say where to go on.
        logging.shutdown()
        os._exit(WEDGED_EXIT)

    service = IngestService(settings, registry=registry, pseudonymiser=pseudonymiser,
                            on_stuck=_exit_wedged)
    if ingest.metrics_port is not None:
        try:
            health.serve(ingest.metrics_addr, ingest.metrics_port, service.health,
                         stall_s=ingest.stall_timeout_s)
        except OSError as exc:
            _config_error(f"{variable_of(IngestSettings, 'metrics_port')}: cannot listen on "
                          f"{ingest.metrics_addr}:{ingest.metrics_port} ({exc.strerror})")
    tune_interpreter()

    def _forced(_signum: int, _frame: object) -> None:
        # Nothing uncommitted is lost by leaving now: the batch in hand is simply read again.
        log.error("shutdown grace period over, exiting without draining",
                  extra={"grace_s": ingest.shutdown_grace_s})
        logging.shutdown()
        os._exit(FORCED_EXIT)

    def _stop(signum: int, _frame: object) -> None:
        log.info("stop requested", extra={"signal": signum})
        service.request_stop()
        signal.signal(signal.SIGALRM, _forced)
        signal.setitimer(signal.ITIMER_REAL, ingest.shutdown_grace_s)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("consumer starting", extra={"group": ingest.group_id,
                                         "bootstrap": settings.kafka.bootstrap_servers,
                                         "pid": os.getpid()})
    try:
        stats = service.run(until_caught_up=args.until_caught_up,
                            idle_timeout_s=args.idle_timeout,
                            catch_up_patience_s=args.catch_up_patience)
    except Wedged:
        # The watchdog has said why, loudly; a supervisor starting it again recovers.
        log.error("consumer exiting wedged", extra={"exit_status": WEDGED_EXIT})
        return WEDGED_EXIT
    log.info("consumer stopped", extra={"consumed": stats.consumed, "landed": stats.landed,
                                        "redelivered": stats.redelivered,
                                        "rejected": stats.rejected, "batches": stats.batches,
                                        "dropped": stats.dropped})
    if stats.behind:
        log.error("not caught up", extra={"behind": {
            f"{t}[{p}]": n for (t, p), n in sorted(stats.behind.items())}})
        return NOT_CAUGHT_UP_EXIT
    return 0


def _status(args: argparse.Namespace) -> int:
    from consumers import status

    settings = _settings(args)
    _check_reachable(settings)
    print(status.render(*status.collect(settings)))
    return 0


def _replay(args: argparse.Namespace) -> int:
    """Check refused events again after a fix and land those now valid; print the outcome."""
    import json

    from consumers.replay import ReplayRequest, replay_configured
    from schemas.days import parse_day

    try:
        settings = Settings.load(args.config).check("kafka", "database", "registry", "keys")
        request = ReplayRequest(
            partner_id=args.partner, reason_code=args.reason_code,
            first_day=parse_day(args.first_day) if args.first_day else None,
            last_day=parse_day(args.last_day) if args.last_day else None,
            dry_run=not args.apply)
        outcome = replay_configured(request, args.run_id, settings)
    except ConfigurationError as exc:
        _config_error(str(exc))
    print(json.dumps({"dry_run": request.dry_run, **outcome.as_dict()}, ensure_ascii=False))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="skillsync-consumer",
                                     description="Land partner events in staging.")
    parser.add_argument("--config", type=Path, default=None,
                        help="env file of settings (default: $SKILLSYNC_ENV_FILE); "
                             "the environment overrides it")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="consume partner topics until stopped")
    run.add_argument("--until-caught-up", action="store_true",
                     help="exit 0 once every partition of the subscribed topics is landed to "
                          f"its end; exit {NOT_CAUGHT_UP_EXIT} naming what is behind if that "
                          "stops moving for --catch-up-patience seconds")
    run.add_argument("--catch-up-patience", type=float, default=None,
                     help="seconds a partition may stay behind without moving before "
                          "--until-caught-up gives up (default: twice the session timeout "
                          "plus 15 s, time for a dead member's partitions to move)")
    run.add_argument("--idle-timeout", type=float, default=None,
                     help="exit after this many seconds without records")
    run.set_defaults(func=_run)
    sub.add_parser("status", help="lag, last landed event, recent rejects").set_defaults(
        func=_status)
    replay = sub.add_parser("replay", help="check a partner's refused events again and land "
                                           "those now valid (prints the outcome as JSON)")
    replay.add_argument("--partner", required=True)
    replay.add_argument("--reason-code", default=None, help="only events refused for it")
    replay.add_argument("--first-day", default=None, help="first append day (YYYY-MM-DD)")
    replay.add_argument("--last-day", default=None, help="last append day (YYYY-MM-DD)")
    replay.add_argument("--apply", action="store_true",
                        help="land and record; without it, a dry run that writes nothing")
    replay.add_argument("--run-id", default="manual", help="recorded with each outcome")
    replay.set_defaults(func=_replay)
    args = parser.parse_args(argv)
    logs.configure()
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
