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


def _settings(args: argparse.Namespace) -> ConsumerSettings:
    try:
        return ConsumerSettings.load(args.config)
    except ConfigurationError as exc:
        _config_error(str(exc))


def _config_error(message: str) -> NoReturn:
    # Bad configuration is not retried: stop at once and name the setting.
    print(f"skillsync-consumer: invalid configuration:\n{message}", file=sys.stderr)
    raise SystemExit(CONFIG_EXIT)


def _run(args: argparse.Namespace) -> int:
    from prometheus_client import start_http_server

    from consumers.service import IngestService, tune_interpreter
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
    if settings.metrics_port is not None:
        try:
            start_http_server(settings.metrics_port, addr=settings.metrics_addr)
        except OSError as exc:
            _config_error(f"{variable_of('metrics_port')}: cannot listen on "
                          f"{settings.metrics_addr}:{settings.metrics_port} ({exc.strerror})")
    service = IngestService(settings, registry=registry, pseudonymiser=pseudonymiser)
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
    stats = service.run(until_caught_up=args.until_caught_up, idle_timeout_s=args.idle_timeout)
    log.info("consumer stopped", extra={"consumed": stats.consumed, "landed": stats.landed,
                                        "redelivered": stats.redelivered,
                                        "rejected": stats.rejected, "batches": stats.batches,
                                        "dropped": stats.dropped})
    return 0


def _status(args: argparse.Namespace) -> int:
    from consumers import status

    print(status.render(status.collect(_settings(args))))
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
                     help="exit once every assigned partition is fully landed")
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
