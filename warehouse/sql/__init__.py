"""SQL statements kept as files beside this module, read once and bound by name."""

from __future__ import annotations

import functools
from pathlib import Path

from sqlalchemy import TextClause, text

_HERE = Path(__file__).parent


@functools.cache
def statement(name: str) -> TextClause:
    """The statement in `<name>.sql` under this folder (e.g. "night/40_fact_enrollment")."""
    return text((_HERE / f"{name}.sql").read_text(encoding="utf-8"))


def names(folder: str, prefix: str = "") -> tuple[str, ...]:
    """The statements of a folder whose file names start with `prefix`, in file-name order."""
    return tuple(f"{folder}/{p.stem}" for p in sorted((_HERE / folder).glob(f"{prefix}*.sql")))
