"""The shipped JSON Schema files under schemas/json/, generated from the event models."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from schemas.events import EVENT_TYPES, EventType, json_schema

SCHEMA_DIR = Path(__file__).resolve().parent / "json"


def schema_path(event_type: EventType) -> Path:
    return SCHEMA_DIR / f"{event_type.family}.v{event_type.version}.json"


def render(event_type: EventType) -> str:
    return json.dumps(json_schema(event_type), indent=2, ensure_ascii=False) + "\n"


def load_shipped() -> dict[str, dict[str, Any]]:
    """The shipped schemas by file stem ("enrollment.created.v1")."""
    return {
        path.name.removesuffix(".json"): json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(SCHEMA_DIR.glob("*.json"))
    }


def stale_files() -> list[Path]:
    """Shipped files that differ from what the models generate, or are missing or orphaned."""
    expected = {schema_path(t): render(t) for t in EVENT_TYPES.values()}
    stale = [p for p, text in expected.items() if not p.exists() or p.read_text("utf-8") != text]
    stale += [p for p in SCHEMA_DIR.glob("*.json") if p not in expected]
    return sorted(stale)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="regenerate the files")
    args = parser.parse_args(argv)
    if args.write:
        SCHEMA_DIR.mkdir(exist_ok=True)
        for event_type in EVENT_TYPES.values():
            schema_path(event_type).write_text(render(event_type), encoding="utf-8")
        return 0
    stale = stale_files()
    for path in stale:
        print(f"stale: {path}", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
