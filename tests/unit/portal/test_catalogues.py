"""Every text the portal and the report show comes from the catalogues, translated to Chinese."""

from __future__ import annotations

import pytest

from schemas import i18n
from schemas.catalogue import problems, template
from schemas.errors import FIX_HINTS, REASON_CODES, WARNING_CODES
from warehouse import labels


def test_the_catalogues_hold_exactly_the_messages_of_the_code_and_chinese_translates_all() -> None:
    # `python -m schemas.catalogue update` fixes the first kind; a translator the second.
    assert problems() == []


def test_every_reason_code_has_a_fix_hint_and_both_read_in_chinese() -> None:
    assert set(FIX_HINTS) == set(REASON_CODES)
    with i18n.use_locale("zh_CN"):
        translated = {code: (i18n.gettext(REASON_CODES[code]), i18n.gettext(FIX_HINTS[code]))
                      for code in REASON_CODES}
    assert [c for c, (d, h) in translated.items()
            if d == REASON_CODES[c] or h == FIX_HINTS[c]] == []
    with i18n.use_locale("en"):
        assert i18n.gettext(FIX_HINTS["id_number.checksum"]) == FIX_HINTS["id_number.checksum"]


@pytest.mark.parametrize("table", [labels.DISCREPANCY_KINDS, labels.SUBSIDY_REASONS,
                                   labels.SCORE_LABELS, labels.STATUSES, labels.ROLE_LABELS,
                                   WARNING_CODES], ids=lambda t: next(iter(t)))
def test_every_code_label_is_in_the_catalogue(table) -> None:
    ids = {m.id for m in template()}
    assert set(table.values()) <= ids


def test_chinese_is_the_default_and_english_is_chosen_by_tag() -> None:
    assert i18n.DEFAULT_LOCALE == "zh_CN"
    assert [i18n.negotiate(t) for t in (None, "", "zh", "zh-CN", "en", "en-GB", "fr")] == [
        "zh_CN", "zh_CN", "zh_CN", "zh_CN", "en", "en", "zh_CN"]


def test_dates_and_numbers_read_in_asia_shanghai_and_the_locale() -> None:
    from datetime import UTC, datetime

    moment = datetime(2026, 11, 30, 18, 30, tzinfo=UTC)  # 02:30 the next day in Hangzhou
    with i18n.use_locale("zh_CN"):
        assert i18n.moment_text(moment).startswith("2026年12月1日 02:30")
        assert i18n.number(1234567) == "1,234,567"
    with i18n.use_locale("en"):
        assert i18n.moment_text(moment).startswith("Dec 1, 2026, 2:30")
