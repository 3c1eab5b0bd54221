"""One Jinja2 set-up for the report and the portal: autoescaping, the catalogues, the charts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from schemas import i18n

TEMPLATES = Path(__file__).resolve().parent / "templates"


def compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def environment(*folders: Path | str, extra: Sequence[Path] = ()) -> Environment:
    """Templates from `folders` first, then the warehouse's (charts.html, the report)."""
    env = Environment(
        loader=FileSystemLoader([*map(str, folders), str(TEMPLATES), *map(str, extra)]),
        autoescape=select_autoescape(("html", "svg", "xml"), default_for_string=True),
        extensions=["jinja2.ext.i18n"], undefined=StrictUndefined, trim_blocks=True,
        lstrip_blocks=True, auto_reload=False)
    # The translation is looked up per call in the locale of the page being rendered.
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters.update(number=i18n.number, day=i18n.day_text, moment=i18n.moment_text,
                       compact_json=compact_json)
    return env
