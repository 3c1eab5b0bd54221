"""Command line of the ingestion service: `run` and `status`."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from pydantic import ValidationError

from consumers import logs
from consumers.settings import ConsumerSettings

log = logging.getLogger("skillsync.consumer")


def _settings() -> ConsumerSettings:
    try:
        settings = ConsumerSettings()
        settings.kafka_security()
    except (ValidationError, ValueError) as exc:
        # Bad configuration: stop at once and name the setting.
        print(f"skillsync-consumer: invalid configuration:\n{exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return settings


def _run(args: argparse.Namespace) -> int:
    from prometheus_client import start_http_server

    from consumers.service import IngestService
    from schemas.partners import RegistryError, load_registry
    from schemas.pseudonym import KeyFileError, load_key_file

    settings = _settings()
    try:
        registry = load_registry()
        pseudonymiser = load_key_file(settings.pseudonym_key_file)
    except (RegistryError, KeyFileError) as exc:
        print(f"skillsync-consumer: invalid configuration: {exc}", file=sys.stderr)
        return 2
    if settings.metrics_port is not None:
        start_http_server(settings.metrics_port, addr="127.0.0.1")
    service = IngestService(settings, registry=registry, pseudonymiser=pseudonymiser)

    def _stop(signum: int, _frame: object) -> None:
        log.info("stop requested", extra={"signal": signum})
        service.request_stop()
        # A batch stuck on an outage still ends within the grace period.
        signal.signal(signal.SIGALRM, lambda *_: sys.exit(0))
        signal.alarm(int(settings.shutdown_grace_s))

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("consumer starting", extra={"group": settings.group_id,
                                         "bootstrap": settings.bootstrap_servers})
    stats = service.run(until_caught_up=args.until_caught_up, idle_timeout_s=args.idle_timeout)
    log.info("consumer stopped", extra={"consumed": stats.consumed, "landed": stats.landed,
                                        "redelivered": stats.redelivered,
                                        "rejected": stats.rejected, "batches": stats.batches})
    return 0


def _status(_args: argparse.Namespace) -> int:
    from consumers import status

    print(status.render(status.collect(_settings())))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="skillsync-consumer",
                                     description="Land partner events in staging.")
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
