"""check_event: decode, validate, authorise and pseudonymise one message, or refuse it."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import msgspec
import orjson

from schemas import events as ev
from schemas.days import SHANGHAI
from schemas.errors import Rejection, without_nul
from schemas.identity import (
    IdentifierError,
    canonical_identity,
    credit_code_is_valid,
    validate_certificate_number,
)
from schemas.lenient import lenient_types
from schemas.partners import PartnerRegistry
from schemas.pseudonym import Pseudonymiser, mask_id_number, mask_name, mask_phone
from schemas.reference import current_occupation_code, divisions

MAX_EVENT_BYTES = 1_048_576
# No event of the city's skills system is older: earlier timestamps are mistakes, and years
# before 1 AD (which an offset can push year 1 into) are more than PostgreSQL's clients can read.
EARLIEST_TIMESTAMP = datetime(2000, 1, 1, tzinfo=UTC)
_EARLIEST_DAY = EARLIEST_TIMESTAMP.date()
# Magnitudes a JSON integer may have; JSON decoders read larger ones as floats.
_INT64_LIMIT = 2**63
PASS_MARK = 60.0

_NON_FINITE = re.compile(rb"\b(?:NaN|Infinity)\b")
_QUOTE_THEN_SPACE = re.compile(rb'"[ \t\n\r]')
_SOURCE_PREFIX = "/partners/"
_SOURCE_PATTERN = re.compile(ev.SOURCE_PATTERN)
_BACKSLASH = ord("\\")
_MAX_NAME_IN_MESSAGE = 64
_PUBLISHERS_REMEMBERED = 1024  # (registry, partner, family) verdicts: a few hundred in use


class CheckedEvent(msgspec.Struct, frozen=True):
    """An accepted event, ready to land: `data` holds no plaintext personal data."""

    partner_id: str
    event_id: str
    family: str
    type: str
    version: int
    occurred_at: datetime
    subject: str | None
    person: str | None
    key_id: str | None
    data: dict[str, Any]
    warnings: tuple[str, ...]
    # The envelope's `time`: the partner's own clock, which decides the day its control totals
    # count the event in (occurred_at may be days earlier for a late report).
    sent_at: datetime


class _Checks:
    """What the data rules of one event need and produce."""

    __slots__ = ("latest_allowed", "person", "pseudonymiser", "warnings")

    def __init__(self, pseudonymiser: Pseudonymiser, latest_allowed: datetime) -> None:
        self.pseudonymiser = pseudonymiser
        self.latest_allowed = latest_allowed
        self.warnings: list[str] = []
        self.person: str | None = None

    def accepted(
        self,
        partner_id: str,
        envelope: Any,
        event_type: ev.EventType,
        occurred_at: datetime,
        data: dict[str, Any],
    ) -> CheckedEvent:
        # Positional arguments, in field order: a struct is built twice as fast that way.
        return CheckedEvent(
            partner_id,
            envelope.id,
            event_type.family,
            event_type.name,
            event_type.version,
            occurred_at,
            envelope.subject,
            self.person,
            self.pseudonymiser.key_id if self.person else None,
            data,
            tuple(self.warnings),
            envelope.time,
        )

    def in_window(self, moment: datetime, path: str) -> None:
        """Refuse a timestamp later than now plus skew, or earlier than EARLIEST_TIMESTAMP."""
        if moment > self.latest_allowed:
            raise Rejection("time.in_future", path, "the timestamp is later than now plus skew")
        if moment < EARLIEST_TIMESTAMP:
            area = "schema" if path.startswith("$.data") else "envelope"
            raise Rejection(f"{area}.out_of_range", path,
                            "give a timestamp from 2000-01-01T00:00:00Z on")

    def learner(self, learner: ev.Learner, out: dict[str, Any], path: str) -> None:
        try:
            # Birth dates are judged against the event's own day: a replay decides alike.
            id_type, id_number = canonical_identity(
                learner.id_type, learner.id_number,
                self.latest_allowed.astimezone(SHANGHAI).date())
        except IdentifierError as exc:
            message = f"{exc} (id_type {learner.id_type})"
            raise Rejection(exc.code, f"{path}.id_number", message) from None
        pseudonymiser = self.pseudonymiser
        self.person = person = pseudonymiser.person(id_type, id_number)
        phone = learner.phone
        out["learner"] = {
            "id_type": id_type,
            "person": person,
            "key_id": pseudonymiser.key_id,
            "id_masked": mask_id_number(id_number),
            "name_masked": mask_name(learner.name),
            "phone_masked": mask_phone(phone) if phone else None,
        }

    def occupation(self, code: str | None, out: dict[str, Any], path: str) -> None:
        if code is None:
            return
        current = current_occupation_code(code)
        if current is None:
            raise Rejection(
                "occupation.unknown",
                f"{path}.occupation_code",
                "use a code of the 2022 occupation classification listed in the contract",
            )
        if current != code:
            self.warnings.append("occupation.legacy_code")
            out["occupation_code"] = current
            out["occupation_code_reported"] = code

    def division(self, code: str, path: str) -> None:
        division = divisions().get(code)
        if division is None:
            raise Rejection(
                "division.unknown", path, "use a Hangzhou division code (e.g. 330106 for Xihu)"
            )
        if division.retired:
            self.warnings.append("division.retired")

    def credit_code(self, organisation: ev.Organisation) -> None:
        if not credit_code_is_valid(organisation.credit_code):
            self.warnings.append("credit_code.checksum")


def _enrollment_created(data: Any, out: dict[str, Any], checks: _Checks) -> None:
    checks.learner(data.learner, out, "$.data.learner")
    checks.occupation(data.course.occupation_code, out["course"], "$.data.course")
    checks.credit_code(data.institution)
    checks.division(data.district_code, "$.data.district_code")


def _learner_only(data: Any, out: dict[str, Any], checks: _Checks) -> None:
    checks.learner(data.learner, out, "$.data.learner")


def _evaluation_recorded(data: Any, out: dict[str, Any], checks: _Checks) -> None:
    checks.learner(data.learner, out, "$.data.learner")
    checks.occupation(data.occupation_code, out, "$.data")
    checks.credit_code(data.organisation)
    checks.division(data.district_code, "$.data.district_code")
    passed_both = min(data.theory_score, data.practical_score) >= PASS_MARK
    if passed_both != (data.result == "pass"):
        checks.warnings.append("evaluation.result_inconsistent")


def _evaluation_corrected(data: Any, out: dict[str, Any], checks: _Checks) -> None:
    checks.learner(data.learner, out, "$.data.learner")
    corrected = (
        data.occupation_code,
        data.level,
        data.theory_score,
        data.practical_score,
        data.result,
    )
    if all(value is None for value in corrected):
        raise Rejection(
            "evaluation.empty_correction",
            "$.data",
            "send at least one of occupation_code, level, theory_score, practical_score, result",
        )
    checks.occupation(data.occupation_code, out, "$.data")


def _certificate_issued(data: Any, out: dict[str, Any], checks: _Checks) -> None:
    checks.learner(data.learner, out, "$.data.learner")
    if data.certificate_type == "skill_level":
        if data.scheme == "special_ability" or data.level is None or data.occupation_code is None:
            raise Rejection(
                "certificate.inconsistent",
                "$.data",
                "a skill_level certificate needs a level, an occupation_code and the "
                "skill_level_2020 or vocational_qualification scheme",
            )
    elif data.scheme != "special_ability" or data.level is not None:
        raise Rejection(
            "certificate.inconsistent",
            "$.data",
            "a special_ability certificate has the special_ability scheme and no level",
        )
    if data.paired_certificate_number == data.certificate_number:
        raise Rejection(
            "certificate.inconsistent",
            "$.data.paired_certificate_number",
            "the paired certificate must be a different certificate",
        )
    try:
        issue_year = data.issued_at.astimezone(SHANGHAI).year
    except OverflowError:  # within a day of either end of Python's calendar (years 1 and 9999)
        raise Rejection(
            "schema.out_of_range", "$.data.issued_at", "give the date the certificate was issued"
        ) from None
    try:
        validate_certificate_number(data.certificate_number, data.scheme, data.level, issue_year)
    except IdentifierError as exc:
        raise Rejection(exc.code, "$.data.certificate_number", str(exc)) from None
    checks.occupation(data.occupation_code, out, "$.data")
    checks.credit_code(data.organisation)


def _control_totals(data: Any, out: dict[str, Any], checks: _Checks) -> None:
    latest_day = checks.latest_allowed.astimezone(SHANGHAI).date()
    if not _EARLIEST_DAY <= data.business_day <= latest_day:
        raise Rejection(
            "schema.out_of_range", "$.data.business_day",
            "give a business day from 2000-01-01 to today (Asia/Shanghai)",
        )
    for family in data.counts:
        if family not in ev.FAMILIES:
            raise Rejection(
                "control.unknown_family",
                "$.data.counts",
                f"{family[:_MAX_NAME_IN_MESSAGE]!r} is no event family; use e.g. "
                "'enrollment.created'",
            )
    if data.digests.keys() != data.counts.keys():
        raise Rejection(
            "control.mismatched_families",
            "$.data.digests",
            "give a digest for exactly the families that have a count",
        )
    if data.event_ids is None:
        return
    if data.event_ids.keys() != data.counts.keys():
        raise Rejection(
            "control.mismatched_families",
            "$.data.event_ids",
            "list ids for exactly the families that have a count",
        )
    for family, ids in data.event_ids.items():
        path = f"$.data.event_ids.{family}"
        if len(ids) != data.counts[family] or len(set(ids)) != len(ids):
            raise Rejection(
                "control.count_mismatch", path, "list each event id once, as many as counted"
            )
        if ev.totals_digest(ids) != data.digests[family]:
            raise Rejection(
                "control.digest_mismatch",
                f"$.data.digests.{family}",
                "the digest is SHA-256 hex of the sorted ids joined by newlines",
            )


_DATA_RULES = {
    "enrollment.created": _enrollment_created,
    "enrollment.withdrawn": _learner_only,
    "completion.recorded": _learner_only,
    "evaluation.recorded": _evaluation_recorded,
    "evaluation.corrected": _evaluation_corrected,
    "certificate.issued": _certificate_issued,
    "certificate.revoked": _learner_only,
    "control.totals": _control_totals,
}


def check_event(
    raw: bytes,
    *,
    topic_partner: str,
    registry: PartnerRegistry,
    pseudonymiser: Pseudonymiser,
    now: datetime | None = None,
    max_future_skew: timedelta = timedelta(minutes=10),
) -> CheckedEvent:
    """The accepted, pseudonymised event, or Rejection saying why not (never anything else)."""
    if len(raw) > MAX_EVENT_BYTES:
        raise Rejection(
            "size.too_large", "$", f"the message has {len(raw)} bytes; the limit is 1 MiB"
        )
    latest_allowed = (now or datetime.now(UTC)) + max_future_skew
    checked = check_quickly(raw, topic_partner, registry, pseudonymiser, latest_allowed)
    if checked is None:
        checked = check_thoroughly(raw, topic_partner, registry, pseudonymiser, latest_allowed)
    return checked


def check_quickly(
    raw: bytes,
    topic_partner: str,
    registry: PartnerRegistry,
    pseudonymiser: Pseudonymiser,
    latest_allowed: datetime,
) -> CheckedEvent | None:
    """The accepted event, or None to leave the verdict to the thorough path.

    It makes every check the thorough path makes, most in a cheaper form that passes only what
    the thorough form passes, the data rules as the very same functions; it never refuses, so
    each refusal is named by the thorough path, in its order.
    """
    try:
        document = orjson.loads(raw)
        twin = lenient_types()[document["type"]]
        envelope: Any = msgspec.convert(document, twin.envelope)
    except (ValueError, LookupError, TypeError):  # no JSON object, type or shape of an event
        return None
    event_type = twin.event_type
    publisher = _publisher(registry, topic_partner, event_type.family)
    if (
        publisher is None
        or envelope.source != publisher[1]
        or not twin.patterns_hold(envelope)
        or (_BACKSLASH in raw and b"\\u0000" in raw)  # one byte is far quicker to find than six
        # _has_duplicate_keys's own first test, made here: nearly every event passes it.
        or (orjson.dumps(document) != raw and _has_duplicate_keys(raw, document))
        or latest_allowed.tzinfo is None
    ):
        return None
    data = envelope.data
    sent_at = envelope.time
    occurred_at = sent_at
    if event_type.occurred_at_field is not None:
        occurred_at = getattr(data, event_type.occurred_at_field)
    # Aware datetimes compare fastest when they share one tzinfo object, as an event's usually do.
    latest = latest_allowed.astimezone(sent_at.tzinfo)
    if (
        sent_at > latest
        or occurred_at > latest
        or sent_at < EARLIEST_TIMESTAMP
        or occurred_at < EARLIEST_TIMESTAMP
    ):
        return None
    checks = _Checks(pseudonymiser, latest_allowed)
    out: dict[str, Any] = document["data"]
    try:
        _DATA_RULES[event_type.family](data, out, checks)
    except Rejection:
        # The rules stand in for the patterns of reference codes (lenient.VOUCHED_BY_REFERENCE),
        # so a schema problem the thorough path names first may lie behind this refusal.
        return None
    return checks.accepted(publisher[0], envelope, event_type, occurred_at, out)


@lru_cache(maxsize=_PUBLISHERS_REMEMBERED)
def _publisher(
    registry: PartnerRegistry, topic_partner: str, family: str
) -> tuple[str, str] | None:
    """(partner id, source) if the topic's partner may publish the family, else None.

    A registry never changes once built, so its verdict holds for every later event. The
    source is the only one the quick path accepts: testing it against the envelope's pattern
    here stands in for testing each event's (lenient.VOUCHED_BY_AUTHORISATION).
    """
    partner = registry.get(topic_partner)
    if partner is None or not partner.may_publish(family):
        return None
    source = _SOURCE_PREFIX + partner.partner_id
    if _SOURCE_PATTERN.search(source) is None:
        return None
    return partner.partner_id, source


def check_thoroughly(
    raw: bytes,
    topic_partner: str,
    registry: PartnerRegistry,
    pseudonymiser: Pseudonymiser,
    latest_allowed: datetime,
) -> CheckedEvent:
    """check_event step by step, naming the first problem found."""
    document = _decode(raw)
    event_type = _event_type(document)
    partner_id = _authorise(document, event_type, topic_partner, registry)
    try:
        envelope = msgspec.convert(document, event_type.envelope)
    except msgspec.ValidationError as exc:
        raise _schema_rejection(str(exc), document) from None
    if _has_duplicate_keys(raw, document):
        raise Rejection("decode.duplicate_key", "$", "send every key once per object")
    if b"\\u0000" in raw:
        _refuse_nul(document, "$")

    checks = _Checks(pseudonymiser, latest_allowed)
    checks.in_window(envelope.time, "$.time")
    data = envelope.data
    occurred_at = envelope.time
    if event_type.occurred_at_field is not None:
        occurred_at = getattr(data, event_type.occurred_at_field)
        checks.in_window(occurred_at, f"$.data.{event_type.occurred_at_field}")
    out: dict[str, Any] = document["data"]
    _DATA_RULES[event_type.family](data, out, checks)
    return checks.accepted(partner_id, envelope, event_type, occurred_at, out)


def _decode(raw: bytes) -> dict[str, Any]:
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        reason = str(exc)
        if "UTF-8" in reason or "surrogate" in reason:
            code = "decode.not_utf8"
            reason = _utf8_problem(raw) or reason
        elif "depth limit" in reason:
            code = "decode.too_deep"
        elif "infinity" in reason or _NON_FINITE.search(raw):
            code = "decode.non_finite_number"
        else:
            code = "decode.not_json"
        raise Rejection(code, "$", f"send one UTF-8 JSON object ({reason})") from None
    if not isinstance(document, dict):
        raise Rejection("decode.not_object", "$", "send one JSON object (a CloudEvent)")
    return document


def _utf8_problem(raw: bytes) -> str | None:
    """Where bytes stop being UTF-8, counted in bytes (a decoder's column counts characters)."""
    try:
        raw.decode()
    except UnicodeDecodeError as exc:
        return f"the bytes are not UTF-8 from byte offset {exc.start} ({exc.reason})"
    return None  # valid UTF-8; the decoder objected to an escape such as a lone surrogate


def _event_type(document: dict[str, Any]) -> ev.EventType:
    name = document.get("type")
    if name is None:
        raise Rejection("envelope.missing_field", "$.type", "set `type` to a documented type")
    if not isinstance(name, str):
        raise Rejection("envelope.wrong_type", "$.type", "`type` must be a string")
    event_type = ev.EVENT_TYPES.get(name)
    if event_type is not None:
        return event_type
    family = name.removeprefix(ev.TYPE_PREFIX).rpartition(".v")[0]
    if name.startswith(ev.TYPE_PREFIX) and family in ev.FAMILIES:
        versions = sorted(t.name for t in ev.EVENT_TYPES.values() if t.family == family)
        raise Rejection("type.unknown_version", "$.type", f"accepted versions: {versions}")
    raise Rejection(
        "type.unknown", "$.type", f"use one of the documented types, e.g. {ev.TYPE_PREFIX}..."
    )


def _authorise(
    document: dict[str, Any],
    event_type: ev.EventType,
    topic_partner: str,
    registry: PartnerRegistry,
) -> str:
    partner = registry.get(topic_partner)
    if partner is None:
        raise Rejection(
            "authorise.unknown_partner", "$", "register the partner before it publishes"
        )
    source = document.get("source")
    if source is None:
        raise Rejection("envelope.missing_field", "$.source", "set `source` to /partners/<id>")
    if not isinstance(source, str):
        raise Rejection("envelope.wrong_type", "$.source", "`source` must be a string")
    if not source.startswith(_SOURCE_PREFIX):
        raise Rejection("envelope.bad_source", "$.source", "set `source` to /partners/<id>")
    if source[len(_SOURCE_PREFIX) :] != partner.partner_id:
        raise Rejection(
            "authorise.source_mismatch",
            "$.source",
            f"publish to your own topic with source /partners/{partner.partner_id}",
        )
    if not partner.may_publish(event_type.family):
        raise Rejection(
            "authorise.type_not_allowed",
            "$.type",
            f"role {partner.role} may publish only {sorted(partner.allowed_types)}",
        )
    return partner.partner_id


def _schema_rejection(error: str, document: Any = None) -> Rejection:
    detail, at, where = error.rpartition(" - at `")
    path = where.rstrip("`") if at else "$"
    if not at:
        detail = error
    area = "schema" if path.startswith("$.data") else "envelope"
    if detail.startswith(("Object missing required field `", "Object contains unknown field `")):
        name = detail.split("`")[1][:_MAX_NAME_IN_MESSAGE]
        path = f"{path}.{name}"
        missing = detail.startswith("Object missing")
        code = f"{area}.missing_field" if missing else f"{area}.extra_field"
        return Rejection(code, path, "add the field" if missing else "remove the field")
    if "timezone component" in detail:
        return Rejection("time.no_offset", path, "give the timestamp a UTC offset, e.g. +08:00")
    if detail.startswith("Invalid enum value") or detail.startswith("Invalid value"):
        # The offending value is not echoed: it might be personal data.
        return Rejection(f"{area}.bad_value", path, "use one of the documented values")
    if "matching regex" in detail or detail.startswith("Invalid"):
        return Rejection(f"{area}.bad_format", path, detail)
    if detail == "Expected `int`, got `float`" and _huge_integer_at(document, path):
        return Rejection(f"{area}.out_of_range", path,
                         "the integer is out of range (its magnitude must be below 2^63)")
    if detail.startswith("Expected `") and ", got `" in detail:
        return Rejection(f"{area}.wrong_type", path, detail)
    return Rejection(f"{area}.out_of_range", path, detail)


_PATH_STEP = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")


def _huge_integer_at(document: Any, path: str) -> bool:
    """Whether the value at a validator's path is a whole number too large for an integer.

    Such a number was written as an integer and read as a float; `[...]` (any value of a map)
    looks at every value there.
    """
    values = [document]
    for name, index in _PATH_STEP.findall(path[1:]):
        found = []
        for value in values:
            if name and isinstance(value, dict) and name in value:
                found.append(value[name])
            elif index == "..." and isinstance(value, dict):
                found += value.values()
            elif index.isdigit() and isinstance(value, list) and int(index) < len(value):
                found.append(value[int(index)])
        values = found
    return any(isinstance(v, float) and v.is_integer() and abs(v) >= _INT64_LIMIT for v in values)


def _has_duplicate_keys(raw: bytes, document: dict[str, Any]) -> bool:
    # Compact JSON re-encodes to the very same bytes when no key repeats: the common case.
    if orjson.dumps(document) == raw:
        return False
    # With no escaped quote and no whitespace after a quote, every `":` in the bytes ends a
    # key, so fewer keys parsed than `":` written means a key was repeated.
    if b'\\"' not in raw and b"\\u0022" not in raw and not _QUOTE_THEN_SPACE.search(raw):
        return raw.count(b'":') != orjson.dumps(document).count(b'":')
    try:
        json.loads(raw, object_pairs_hook=_pairs_without_duplicates)
    except RecursionError:
        raise Rejection("decode.too_deep", "$", "flatten the document") from None
    except Rejection:
        return True
    return False


def _pairs_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise Rejection("decode.duplicate_key", "$", "send every key once per object")
    return result


def _refuse_nul(value: Any, path: str) -> None:
    if isinstance(value, str):
        if "\x00" in value:
            raise Rejection("decode.nul_character", path, "remove the NUL character (\\u0000)")
    elif isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                raise Rejection("decode.nul_character", path, "remove the NUL character")
            _refuse_nul(item, f"{path}.{key[:_MAX_NAME_IN_MESSAGE]}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_nul(item, f"{path}[{index}]")


class _ClaimedId(msgspec.Struct):
    id: str


# Skips every other field unparsed: a replay looks up the ids of whole batches with it.
_claimed_id_decoder = msgspec.json.Decoder(_ClaimedId)
_MAX_CLAIMED_ID = 200  # identifiers are at most 128 characters: a longer one never landed


def claimed_event_id(raw: bytes | None) -> str | None:
    """The `id` a message claims, unchecked, so a refusal can name it; None when unreadable.

    It is stored with the refusal, so a NUL (which no landed id has) is spelled out.
    """
    try:
        claimed: str | None = _claimed_id_decoder.decode(raw or b"").id
    # ValidationError is a DecodeError.
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    except RecursionError:
        # A nesting bomb overflows the decoder's recursion limit: walk the top level instead.
        claimed = _top_level_id(raw or b"")
    return None if claimed is None else without_nul(claimed[:_MAX_CLAIMED_ID])


_JSON_SPACE = re.compile(r"[ \t\n\r]*")
_STRING_OR_BRACKET = re.compile(r'["\[\]{}]')
_SCALAR_END = re.compile(r"[,}\] \t\n\r]")


def _top_level_id(raw: bytes) -> str | None:
    """The string `id` of a top-level JSON object, its other values skipped unparsed.

    Skipping counts brackets instead of recursing, so a value nested past any depth limit
    that comes after (or before) the id does not hide it. None if it cannot tell.
    """
    try:
        text = raw.decode()
        at = _JSON_SPACE.match(text, 0).end()  # type: ignore[union-attr]
        if text[at : at + 1] != "{":
            return None
        at += 1
        while True:
            at = _JSON_SPACE.match(text, at).end()  # type: ignore[union-attr]
            if text[at : at + 1] != '"':
                return None
            key, at = json.decoder.scanstring(text, at + 1)  # type: ignore[attr-defined]
            at = _JSON_SPACE.match(text, at).end()  # type: ignore[union-attr]
            if text[at : at + 1] != ":":
                return None
            at = _JSON_SPACE.match(text, at + 1).end()  # type: ignore[union-attr]
            if key == "id":
                if text[at : at + 1] != '"':
                    return None
                return str(json.decoder.scanstring(text, at + 1)[0])  # type: ignore[attr-defined]
            at = _skip_value(text, at)
            at = _JSON_SPACE.match(text, at).end()  # type: ignore[union-attr]
            if text[at : at + 1] != ",":
                return None
            at += 1
    except (UnicodeDecodeError, ValueError):
        return None


def _skip_value(text: str, at: int) -> int:
    """The index just past the JSON value starting at `at` (ValueError if it never ends)."""
    if text[at : at + 1] == '"':
        return int(json.decoder.scanstring(text, at + 1)[1])  # type: ignore[attr-defined]
    if text[at : at + 1] not in ("{", "["):
        end = _SCALAR_END.search(text, at)
        return len(text) if end is None else end.start()
    depth = 0
    while True:
        found = _STRING_OR_BRACKET.search(text, at)
        if found is None:
            raise ValueError("unterminated value")
        char = found.group()
        if char == '"':
            at = json.decoder.scanstring(text, found.end())[1]  # type: ignore[attr-defined]
            continue
        depth += 1 if char in "{[" else -1
        at = found.end()
        if depth == 0:
            return at
