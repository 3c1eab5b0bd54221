"""Command line of the partners' kit: publish, read rejects, follow the sync feed, simulate."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import fields
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import IO

from adapters.settings import KafkaSettings, read_section
from partners.faults import Faults
from partners.kit import Publisher, connect_producer, read_rejects, send_all
from partners.simulate import OutgoingMessage, Simulation, simulate
from schemas.days import SHANGHAI
from schemas.errors import ConfigurationError, Rejection

# Bulk runs show progress once they are long enough to wonder about.
PROGRESS_THRESHOLD = 50_000


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        # Checking events or writing files needs no broker, nor its settings.
        offline = getattr(args, "check_only", False) or getattr(args, "out", None) is not None
        args.settings = None if offline else _settings(args)
    except ConfigurationError as exc:
        print(f"configuration error:\n{exc}", file=sys.stderr)
        return 2
    return int(args.run(args))


def _connection_options() -> argparse.ArgumentParser:
    """Flags over the environment; the password comes only from the environment or --config."""
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group(
        "connection (default: the environment, KAFKA_BOOTSTRAP_SERVERS and SKILLSYNC_KAFKA_*)")
    group.add_argument("--config", type=Path, metavar="FILE",
                       help="env file of settings, e.g. SKILLSYNC_KAFKA_SASL_PASSWORD=...")
    group.add_argument("--bootstrap-servers", metavar="HOST:PORT[,...]")
    group.add_argument("--security-protocol",
                       choices=["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"])
    group.add_argument("--sasl-mechanism", choices=["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
    group.add_argument("--sasl-username", metavar="PRINCIPAL", help="e.g. partner.zjgj")
    group.add_argument("--ssl-cafile", type=Path, metavar="PEM",
                       help="the certificate authority that signed the broker's certificate")
    return options


def _settings(args: argparse.Namespace) -> KafkaSettings:
    flags = {name: value for name in ("bootstrap_servers", "security_protocol", "sasl_mechanism",
                                      "sasl_username", "ssl_cafile")
             if (value := getattr(args, name)) is not None}
    if args.config is not None and not args.config.is_file():
        raise ConfigurationError(f"--config: no file at {args.config}")
    return read_section(KafkaSettings, args.config, **flags)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m partners", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    connection = _connection_options()

    publish = commands.add_parser("publish", parents=[connection],
                                  help="check and publish events (JSON lines)")
    publish.add_argument("--partner", required=True, help="your partner id, e.g. zjgj")
    publish.add_argument("--file", type=Path, help="JSON-lines file; standard input if omitted")
    publish.add_argument(
        "--totals-for",
        type=date.fromisoformat,
        metavar="YYYY-MM-DD",
        help="then publish the control totals of this business day",
    )
    publish.add_argument(
        "--check-only", action="store_true", help="explain refusals without publishing anything"
    )
    publish.set_defaults(run=_publish)

    rejects = commands.add_parser("rejects", parents=[connection],
                                  help="show what the pipeline refused and why")
    rejects.add_argument("--partner", required=True)
    rejects.add_argument(
        "--idle", type=float, default=5.0, help="stop after this many seconds without a new record"
    )
    rejects.set_defaults(run=_rejects)

    sim = commands.add_parser("simulate", parents=[connection],
                              help="simulate the city's partners")
    sim.add_argument(
        "--day",
        type=date.fromisoformat,
        default=_yesterday(),
        metavar="YYYY-MM-DD",
        help="first business day (default: yesterday; hours still to come count as future)",
    )
    sim.add_argument("--days", type=int, default=1, help="number of business days")
    sim.add_argument("--events", type=int, required=True, help="lifecycle events in all")
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--out", type=Path, help="write files here instead of publishing")
    sim.add_argument("--manifest", type=Path, help="where to write the manifest when publishing")
    sim.add_argument("--progress", action="store_true", help="show progress even off a TTY")
    knobs = sim.add_argument_group("faults (all off by default)")
    for knob in fields(Faults):
        kind = float if knob.name.endswith("_rate") else int
        knobs.add_argument(
            f"--{knob.name.replace('_', '-')}",
            type=kind,
            default=knob.default,
            metavar="RATE" if kind is float else "N",
        )
    sim.set_defaults(run=_simulate)

    from partners.follow import add_command as add_follow

    add_follow(commands, connection)
    return parser


def _yesterday() -> date:
    return datetime.now(SHANGHAI).date() - timedelta(days=1)


def _publish(args: argparse.Namespace) -> int:
    lines = _lines(args.file.open("rb") if args.file else sys.stdin.buffer)
    settings: KafkaSettings | None = args.settings
    with Publisher(args.partner, bootstrap=settings.bootstrap_servers if settings else None,
                   security=settings) as publisher:
        if args.check_only:
            failed = 0
            for index, raw in enumerate(lines):
                try:
                    publisher.check(raw)
                except Rejection as rejection:
                    failed += 1
                    print(f"line {index + 1}: refused {rejection}", file=sys.stderr)
            return 1 if failed else 0
        report = publisher.publish(lines)
        if args.totals_for is not None:
            totals = publisher.publish_totals(args.totals_for)
            print(f"control totals for {args.totals_for}: sent {totals.sent}")
        for refused in report.refused:
            print(
                f"line {refused.index + 1} (id {refused.event_id or '?'}): refused "
                f"{refused.code} at {refused.path}: {refused.message}",
                file=sys.stderr,
            )
        print(f"sent {report.sent}, refused {len(report.refused)}")
    return 1 if report.refused else 0


def _lines(stream: IO[bytes]) -> Iterator[bytes]:
    with stream:
        for line in stream:
            if line.strip():
                yield line.rstrip(b"\r\n")


def _rejects(args: argparse.Namespace) -> int:
    count = 0
    settings: KafkaSettings = args.settings
    for record in read_rejects(args.partner, bootstrap=settings.bootstrap_servers,
                               security=settings, idle_seconds=args.idle):
        count += 1
        print(
            f"{record.original_topic}[{record.original_partition}]@{record.original_offset} "
            f"key={(record.key or b'').decode('utf-8', 'replace')}: {record.reason_code} "
            f"at {record.field_path} ({record.stage}): {record.message}"
        )
    print(f"{count} refused", file=sys.stderr)
    return 0


def _simulate(args: argparse.Namespace) -> int:
    faults = Faults(**{knob.name: getattr(args, knob.name) for knob in fields(Faults)})
    simulation = simulate(args.day, args.events, args.seed, faults, days=args.days)
    messages = _with_progress(simulation, args.progress)
    if args.out is not None:
        write_files(simulation, messages, args.out)
        print(f"wrote {len(simulation)} messages and manifest.json to {args.out}")
        return 0
    producer = connect_producer(args.settings.bootstrap_servers, security=args.settings)
    try:
        sent = send_all(messages, producer)
    finally:
        producer.close()
    print(f"published {sent} messages")
    if args.manifest is not None:
        args.manifest.write_bytes(simulation.manifest_json())
    return 0


def _with_progress(simulation: Simulation, asked: bool) -> Iterable[OutgoingMessage]:
    shown = asked or (sys.stderr.isatty() and len(simulation) >= PROGRESS_THRESHOLD)
    if not shown:
        return simulation.messages
    from tqdm import tqdm

    return tqdm(simulation.messages, total=len(simulation), unit="msg", file=sys.stderr)


def write_files(simulation: Simulation, messages: Iterable[OutgoingMessage], out: Path) -> None:
    """One JSON-lines file of raw values per topic, plus manifest.json."""
    out.mkdir(parents=True, exist_ok=True)
    handles: dict[str, IO[bytes]] = {}
    try:
        for message in messages:
            handle = handles.get(message.topic)
            if handle is None:
                handle = handles[message.topic] = (out / f"{message.topic}.jsonl").open("wb")
            handle.write(message.value + b"\n")
    finally:
        for handle in handles.values():
            handle.close()
    (out / "manifest.json").write_bytes(simulation.manifest_json())
