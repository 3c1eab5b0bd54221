"""Events/s of check_event on a realistic mix, as a ratio to bare orjson.loads of the same bytes."""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from schemas.examples import example_events
from schemas.identity import resident_id_check_char
from schemas.lenient import LenientType, lenient_types
from schemas.partners import load_registry
from schemas.pipeline import _DATA_RULES, _Checks, check_event
from schemas.pseudonym import Pseudonymiser

# Roughly a day's shape: many enrolments and completions, fewer evaluations and certificates.
MIX = {
    "enrollment.created.v1": 30,
    "enrollment.withdrawn.v1": 4,
    "completion.recorded.v1": 25,
    "evaluation.recorded.v1": 12,
    "evaluation.recorded.v2": 8,
    "evaluation.corrected.v1": 1,
    "certificate.issued.v1": 15,
    "certificate.revoked.v1": 1,
    "control.totals.v1": 1,
}
TARGET_RATIO = 0.25


def random_resident_id(rng: random.Random) -> str:
    first17 = (
        rng.choice(["330106", "330108", "330122", "330103", "410102"])
        + f"{rng.randint(1960, 2004)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        + f"{rng.randint(0, 999):03d}"
    )
    return first17 + resident_id_check_char(first17)


def workload(size: int, seed: int) -> list[tuple[bytes, str]]:
    rng = random.Random(seed)
    examples = example_events()
    names = [f"org.skillsync.{short}" for short in MIX]
    messages = []
    for index, type_name in enumerate(rng.choices(names, weights=list(MIX.values()), k=size)):
        event = examples[type_name]
        event["id"] = f"evt-{index:09d}"
        learner = event["data"].get("learner")
        if learner:
            learner["id_number"] = random_resident_id(rng)
            learner["phone"] = f"13{rng.randint(0, 999_999_999):09d}"
        partner = str(event["source"]).rsplit("/", 1)[-1]
        messages.append((orjson.dumps(event), partner))
    return messages


def rate(run: Callable[[], None], count: int, repeats: int) -> float:
    best = min(_timed(run) for _ in range(repeats))
    return count / best


def _timed(run: Callable[[], None]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def stage_costs(
    messages: list[tuple[bytes, str]], pseudonymiser: Pseudonymiser, now: datetime
) -> dict[str, Callable[[], None]]:
    """Each stage an accepted event passes through, timed on its own over the whole mix.

    The data rules and their state are the pipeline's private parts: timed here, used nowhere else.
    """
    twins = lenient_types()
    documents = [orjson.loads(raw) for raw, _ in messages]
    typed: list[tuple[LenientType, Any]] = [
        (twins[d["type"]], msgspec.convert(d, twins[d["type"]].envelope)) for d in documents
    ]
    learners = [envelope.data.learner for _, envelope in typed
                if getattr(envelope.data, "learner", None) is not None]
    latest_allowed = now + timedelta(minutes=10)

    def typed_decode() -> None:
        for raw, _ in messages:
            document = orjson.loads(raw)
            msgspec.convert(document, twins[document["type"]].envelope)

    def pattern_gate() -> None:
        for twin, envelope in typed:
            twin.patterns_hold(envelope)

    def duplicate_key_test() -> None:
        for (raw, _), document in zip(messages, documents, strict=True):
            orjson.dumps(document) == raw  # noqa: B015 - the comparison is what is timed

    def learner() -> None:
        checks = _Checks(pseudonymiser, latest_allowed)
        for person in learners:
            checks.learner(person, {}, "$.data.learner")

    def data_rules() -> None:
        # The rules read the typed event and write the landed form into the document's data.
        for (twin, envelope), document in zip(typed, documents, strict=True):
            rules = _DATA_RULES[twin.event_type.family]
            rules(envelope.data, document["data"], _Checks(pseudonymiser, latest_allowed))

    id_numbers = [f"{index:018d}" for index in range(len(messages))]

    def pseudonyms() -> None:
        for id_number in id_numbers:
            pseudonymiser.person("resident_id", id_number)

    return {
        "decode into typed structs (loads + convert)": typed_decode,
        "pattern gate (the patterns the typed decode leaves out)": pattern_gate,
        "duplicate-key test (re-encode, compare)": duplicate_key_test,
        "data rules of each event's family, learner included": data_rules,
        "  of which the learner (identity, pseudonym, masks)": learner,
        "    of which the pseudonym alone (HMAC-SHA256)": pseudonyms,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--profile", action="store_true", help="also print where check_event spends its time"
    )
    parser.add_argument(
        "--fixed", action="store_true", help="also time each stage an accepted event needs"
    )
    args = parser.parse_args()

    messages = workload(args.events, seed=2024)
    registry = load_registry()
    pseudonymiser = Pseudonymiser({"bench": b"b" * 32}, "bench")
    now = datetime(2024, 7, 1, tzinfo=UTC)

    def parse_only() -> None:
        for raw, _ in messages:
            orjson.loads(raw)

    def full_check() -> None:
        for raw, partner in messages:
            check_event(
                raw, topic_partner=partner, registry=registry, pseudonymiser=pseudonymiser, now=now
            )

    full_check()  # warm caches and verify the whole mix is accepted
    parsed = rate(parse_only, len(messages), args.repeats)
    checked = rate(full_check, len(messages), args.repeats)
    mean_bytes = sum(len(raw) for raw, _ in messages) / len(messages)
    print(f"events: {len(messages)} (mean {mean_bytes:.0f} bytes), best of {args.repeats} runs")
    print(f"orjson.loads:  {parsed:>10,.0f} events/s")
    print(f"check_event:   {checked:>10,.0f} events/s")
    print(f"ratio: {checked / parsed:.3f} (target >= {TARGET_RATIO})")
    if args.fixed:
        for name, stage in stage_costs(messages, pseudonymiser, now).items():
            per_event = 1e6 / rate(stage, len(messages), args.repeats)
            print(f"  {name}: {per_event:.2f} µs/event ({per_event * parsed / 1e6:.2f} parses)")
    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(full_check)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
