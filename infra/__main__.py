"""`python -m infra up|down|status|env|airflow ...`: the local services, idempotently."""

from __future__ import annotations

import argparse
import sys
import warnings

from infra import airflow
from infra.local import LocalServices
from infra.process import ServiceError
from infra.stack import down, status, up

warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up_cmd = sub.add_parser("up", help="start PostgreSQL and Kafka, migrate, create topics")
    up_cmd.add_argument("--no-airflow", action="store_true")
    up_cmd.add_argument("--no-portal", action="store_true")
    sub.add_parser("down", help="stop what `up` started")
    sub.add_parser("status", help="what is running")
    sub.add_parser("env", help="print the environment the project's commands use")
    demo = sub.add_parser("demo", help="a simulated night through the whole pipeline")
    demo.add_argument("--events", type=int, default=5000)
    demo.add_argument("--seed", type=int, default=7)
    af = sub.add_parser("airflow", help="run an airflow command with the project's environment")
    af.add_argument("args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    cfg = LocalServices()
    try:
        if args.command == "up":
            up(cfg, with_airflow=not args.no_airflow, with_portal=not args.no_portal)
        elif args.command == "down":
            down(cfg)
        elif args.command == "status":
            status(cfg)
        elif args.command == "env":
            env = airflow.environment(cfg, base={})
            for key in sorted(env):
                print(f"export {key}={env[key]}")
        elif args.command == "demo":
            from infra.demo import run

            return run(args.events, args.seed)
        elif args.command == "airflow":
            return airflow.run(cfg, args.args, check=False)
    except ServiceError as exc:
        print(f"infra: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
