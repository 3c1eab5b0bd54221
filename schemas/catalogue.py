"""Keep the message catalogues in step with the code: `python -m schemas.catalogue update|check`.

Messages are extracted from the Python code and Jinja2 templates of the packages that show
text to people, plus the reason descriptions and fix hints of schemas.errors.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po, write_po

from schemas.errors import FIX_HINTS, REASON_CODES, WARNING_CODES
from schemas.i18n import DEFAULT_LOCALE, DOMAIN, LOCALE_DIR, LOCALES, catalogue_path

ROOT = LOCALE_DIR.parent.parent
SOURCES = ("portal", "warehouse", "schemas")
METHODS = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n", "newstyle_gettext": "true"}}
KEYWORDS = {**DEFAULT_KEYWORDS, "N_": None}
# A fixed header date: extracting twice gives the same file.
HEADER_DATE = datetime(2026, 12, 1)


def _extracted() -> Iterator[tuple[str | tuple[str, ...], str]]:
    """(message, where) for every message the code, the templates and schemas.errors show;
    a message with plural forms is the tuple of its forms."""
    for folder in SOURCES:
        for filename, lineno, message, _comments, _context in extract_from_dir(
                ROOT / folder, METHODS, OPTIONS, KEYWORDS, strip_comment_tags=True):
            if isinstance(message, tuple):  # ngettext: singular and plural, no empty parts
                message = tuple(part for part in message if part)
            yield message, f"{folder}/{filename}:{lineno}"
    for table, source in ((REASON_CODES, "reason"), (WARNING_CODES, "warning"),
                          (FIX_HINTS, "fix hint")):
        for code, message in table.items():
            yield message, f"schemas/errors.py ({source} {code})"


def template() -> Catalog:
    catalogue = Catalog(domain=DOMAIN, project="skillsync", version="1",
                        copyright_holder="skillsync", creation_date=HEADER_DATE,
                        revision_date=HEADER_DATE, fuzzy=False)
    for message, where in _extracted():
        path, _, line = where.partition(":")
        catalogue.add(message, locations=[(path, int(line))] if line.isdigit() else [],
                      auto_comments=[] if line.isdigit() else [where.partition(" (")[2][:-1]])
    return catalogue


def _read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle, locale=locale, domain=DOMAIN)


def _write(path: Path, catalogue: Catalog) -> None:
    buffer = io.BytesIO()
    write_po(buffer, catalogue, width=100, sort_output=True, omit_header=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())


def update() -> None:
    """Rewrite messages.pot and merge it into each locale's .po (new messages untranslated)."""
    pot = template()
    _write(LOCALE_DIR / f"{DOMAIN}.pot", pot)
    for locale in LOCALES:
        path = catalogue_path(locale)
        catalogue = _read(path, locale) if path.exists() else Catalog(locale=locale,
                                                                     domain=DOMAIN)
        catalogue.update(pot, no_fuzzy_matching=True, update_header_comment=True)
        catalogue.fuzzy = False
        catalogue.project, catalogue.version = "skillsync", "1"
        catalogue.obsolete.clear()
        catalogue.revision_date = HEADER_DATE
        catalogue.creation_date = HEADER_DATE
        _write(path, catalogue)


def problems() -> list[str]:
    """What keeps the catalogues from matching the code; empty when they do."""
    wanted = {_key(m.id) for m in template() if m.id}
    found: list[str] = []
    for locale in LOCALES:
        catalogue = _read(catalogue_path(locale), locale)
        have = {_key(m.id) for m in catalogue if m.id}
        found += [f"{locale}: not in the catalogue: {m!r}" for m in sorted(wanted - have)]
        found += [f"{locale}: no longer used: {m!r}" for m in sorted(have - wanted)]
        if locale == DEFAULT_LOCALE or not locale.startswith("en"):
            found += [f"{locale}: untranslated: {m.id!r}" for m in catalogue
                      if m.id and (not all(_forms(m.string)) or m.fuzzy)]
    return found


def _key(message: str | Sequence[str]) -> str:
    return message if isinstance(message, str) else message[0]


def _forms(string: str | Sequence[str] | None) -> tuple[str, ...]:
    if string is None:
        return ("",)
    return (string,) if isinstance(string, str) else tuple(string)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m schemas.catalogue", description=__doc__)
    parser.add_argument("command", choices=("update", "check"))
    args = parser.parse_args(argv)
    if args.command == "update":
        update()
    found = problems()
    for line in found:
        print(line)
    return 1 if found and args.command == "check" else 0


if __name__ == "__main__":
    sys.exit(main())
