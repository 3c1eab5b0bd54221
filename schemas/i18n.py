"""The Babel message catalogues of the portal and the report, and formatting for a locale."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "messages"
# Simplified Chinese first: the people reading the pages are Hangzhou's bureaus and partners.
LOCALES = ("zh_CN", "en")
DEFAULT_LOCALE = LOCALES[0]
DISPLAY_ZONE = ZoneInfo("Asia/Shanghai")

_current: ContextVar[str] = ContextVar("skillsync_locale", default=DEFAULT_LOCALE)


def catalogue_path(locale: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translations(locale: str) -> Translations:
    """The locale's catalogue, compiled in memory from its committed .po file.

    Compiling at load (a few milliseconds) instead of committing .mo files means the text
    served is always the reviewed text in git, and no build step can be forgotten.
    """
    if locale not in LOCALES:
        raise ValueError(f"locale {locale!r} is not one of {LOCALES}")
    with catalogue_path(locale).open("rb") as handle:
        catalogue = read_po(handle, locale=locale, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalogue, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def negotiate(requested: str | None) -> str:
    """A supported locale for a requested tag (zh, zh-CN, en-GB ...); the default otherwise."""
    if not requested:
        return DEFAULT_LOCALE
    tag = requested.replace("-", "_").split(",")[0].split(";")[0].strip().lower()
    for locale in LOCALES:
        if tag == locale.lower() or tag.split("_")[0] == locale.split("_")[0].lower():
            return locale
    return DEFAULT_LOCALE


def current_locale() -> str:
    return _current.get()


@contextmanager
def use_locale(locale: str) -> Iterator[str]:
    """Translate and format in this locale until the block ends (per request, per page)."""
    token = _current.set(locale if locale in LOCALES else DEFAULT_LOCALE)
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def gettext(message: str) -> str:
    return translations(_current.get()).ugettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(_current.get()).ungettext(singular, plural, n)


def N_(message: str) -> str:
    """Marks a message for the catalogue where it is defined; translated where it is shown."""
    return message


def number(value: float | int | None) -> str:
    return "" if value is None else format_decimal(value, locale=_current.get())


def day_text(value: date | str | None) -> str:
    if value is None:
        return ""
    day = date.fromisoformat(value) if isinstance(value, str) else value
    return format_date(day, "medium", locale=_current.get())


def moment_text(value: datetime | None) -> str:
    """A moment as a reader in Hangzhou reads it, whatever zone it was stored in."""
    if value is None:
        return ""
    return format_datetime(value, "medium", tzinfo=DISPLAY_ZONE, locale=_current.get())


def locale_name(locale: str) -> str:
    return str(Locale.parse(locale).get_display_name(locale))
