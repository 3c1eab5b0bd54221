"""The shipped JSON Schema files under schemas/json/ (inbound events) and schemas/json/sync/
(the sync feed), generated from the contract models."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from schemas import sync
from schemas.events import EVENT_TYPES, EventType, json_schema

SCHEMA_DIR = Path(__file__).resolve().parent / "json"
SYNC_SCHEMA_DIR = SCHEMA_DIR / "sync"


def schema_path(event_type: EventType) -> Path:
    return SCHEMA_DIR / f"{event_type.family}.v{event_type.version}.json"


def render(event_type: EventType) -> str:
    return _dump(json_schema(event_type))


def load_shipped(folder: Path = SCHEMA_DIR) -> dict[str, dict[str, Any]]:
    """The shipped schemas of a folder by file stem ("enrollment.created.v1")."""
    return {
        path.name.removesuffix(".json"): json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(folder.glob("*.json"))
    }


def _expected() -> dict[Path, str]:
    expected = {schema_path(t): render(t) for t in EVENT_TYPES.values()}
    expected |= {SYNC_SCHEMA_DIR / f"{t.stem}.json": _dump(sync.json_schema(t))
                 for t in sync.SYNC_TYPES.values()}
    return expected


def _dump(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def stale_files() -> list[Path]:
    """Shipped files that differ from what the models generate, or are missing or orphaned."""
    expected = _expected()
    stale = [p for p, text in expected.items() if not p.exists() or p.read_text("utf-8") != text]
    stale += [p for folder in (SCHEMA_DIR, SYNC_SCHEMA_DIR) for p in folder.glob("*.json")
              if p not in expected]
    return sorted(stale)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="regenerate the files")
    args = parser.parse_args(argv)
    if args.write:
        SYNC_SCHEMA_DIR.mkdir(parents=True, exist_ok=True)
        for path, text in _expected().items():
            path.write_text(text, encoding="utf-8")
        return 0
    stale = stale_files()
    for path in stale:
        print(f"stale: {path}", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
