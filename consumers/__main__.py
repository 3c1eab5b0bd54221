"""Command line of the ingestion service: `run` and `status`."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from typing import NoReturn

from consumers import logs
from consumers.settings import ConfigurationError, ConsumerSettings, variable_of

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


def _settings(args: argparse.Namespace) -> ConsumerSettings:
    try:
        return ConsumerSettings.load(args.config)
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


def _check_reachable(settings: ConsumerSettings) -> None:
    """Stop with one line naming the setting and address if Kafka or PostgreSQL is not there."""
    from consumers.reach import kafka_unreachable, postgres_unreachable

    problem = kafka_unreachable(settings.bootstrap_servers, timeout_s=settings.startup_timeout_s)
    if problem:
        _unavailable(f"cannot reach Kafka at {settings.bootstrap_servers} "
                     f"({variable_of('bootstrap_servers')}): {problem}")
    address, problem = postgres_unreachable(settings.database_url.get_secret_value(),
                                            timeout_s=settings.startup_timeout_s)
    if problem:
        _unavailable(f"cannot reach PostgreSQL at {address} "
                     f"({variable_of('database_url')}): {problem}")


def _run(args: argparse.Namespace) -> int:
    from consumers import health
    from consumers.service import IngestService, tune_interpreter
    from consumers.watchdog import Wedged
    from schemas.partners import RegistryError, load_registry
    from schemas.pseudonym import KeyFileError, load_key_file

    settings = _settings(args)
    try:
        registry = load_registry(settings.partners_registry_file)
    except RegistryError as exc:
        _config_error(f"{variable_of('partners_registry_file')}: {exc}")
    try:
        pseudonymiser = load_key_file(settings.pseudonym_key_file)
    except KeyFileError as exc:
        _config_error(f"{variable_of('pseudonym_key_file')}: {exc}")
    _check_reachable(settings)

    def _exit_wedged(reason: str) -> None:
        # From the watchdog's thread, the loop being stuck in the Kafka client: nothing
        # uncommitted is lost by leaving now, PostgreSQL's positions say where to go on.
        logging.shutdown()
        os._exit(WEDGED_EXIT)

    service = IngestService(settings, registry=registry, pseudonymiser=pseudonymiser,
                            on_stuck=_exit_wedged)
    if settings.metrics_port is not None:
        try:
            health.serve(settings.metrics_addr, settings.metrics_port, service.health,
                         stall_s=settings.stall_timeout_s)
        except OSError as exc:
            _config_error(f"{variable_of('metrics_port')}: cannot listen on "
                          f"{settings.metrics_addr}:{settings.metrics_port} ({exc.strerror})")
    tune_interpreter()

    def _forced(_signum: int, _frame: object) -> None:
        # Nothing uncommitted is lost by leaving now: the batch in hand is simply read again.
        log.error("shutdown grace period over, exiting without draining",
                  extra={"grace_s": settings.shutdown_grace_s})
        logging.shutdown()
        os._exit(FORCED_EXIT)

    def _stop(signum: int, _frame: object) -> None:
        log.info("stop requested", extra={"signal": signum})
        service.request_stop()
        signal.signal(signal.SIGALRM, _forced)
        signal.setitimer(signal.ITIMER_REAL, settings.shutdown_grace_s)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("consumer starting", extra={"group": settings.group_id,
                                         "bootstrap": settings.bootstrap_servers,
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="skillsync-consumer",
                                     description="Land partner events in staging.")
    parser.add_argument("--config", type=Path, default=None,
                        help="env file of settings (default: $SKILLSYNC_CONSUMER_ENV_FILE); "
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
    args = parser.parse_args(argv)
    logs.configure()
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
