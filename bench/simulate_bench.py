"""Measures the partner simulator: events generated and rendered per second, and peak memory."""

from __future__ import annotations

import argparse
import resource
import sys
import time
from datetime import date

from partners.faults import Faults
from partners.simulate import simulate

TARGET_EVENTS_PER_SECOND = 20_000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--with-faults", action="store_true", help="a light mix of every fault")
    args = parser.parse_args()
    faults = (
        Faults(duplicate_rate=0.001, late_rate=0.001, out_of_order_rate=0.001,
               cross_platform_enrollments=50, malformed=20, schema_violations=60,
               bad_checksums=20, foreign_source=20, forbidden_types=20, missing=20,
               shared_certificate_numbers=10, double_subsidy_claims=10)
        if args.with_faults
        else Faults()
    )  # fmt: skip

    started = time.perf_counter()
    simulation = simulate(date(2025, 3, 10), args.events, args.seed, faults, days=args.days)
    planned = time.perf_counter()
    messages = size = 0
    for message in simulation.messages:
        messages += 1
        size += len(message.value)
    finished = time.perf_counter()

    elapsed = finished - started
    rate = args.events / elapsed
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"lifecycle events      {args.events:>12,}")
    print(f"messages (all kinds)  {messages:>12,}  ({size / max(messages, 1):.0f} bytes each)")
    print(f"planning + manifest   {planned - started:>11.2f}s")
    print(f"rendering             {finished - planned:>11.2f}s")
    print(f"events per second     {rate:>12,.0f}  (target {TARGET_EVENTS_PER_SECOND:,})")
    print(f"peak memory           {peak_mb:>10,.0f} MB")
    return 0 if rate >= TARGET_EVENTS_PER_SECOND else 1


if __name__ == "__main__":
    sys.exit(main())
