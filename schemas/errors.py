"""The project's error kinds, and why an event was refused: reason codes, paths, messages."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

REASON_CODES: Mapping[str, str] = MappingProxyType(
    {
        "size.too_large": "The message is larger than the 1 MiB limit.",
        "decode.not_utf8": "The bytes are not valid UTF-8.",
        "decode.not_json": "The bytes are not a JSON document.",
        "decode.non_finite_number": "NaN or Infinity appears; JSON has no such numbers.",
        "decode.too_deep": "The document nests deeper than any event can.",
        "decode.duplicate_key": "An object repeats a key.",
        "decode.nul_character": "A string contains the NUL character (\\u0000).",
        "decode.not_object": "The document is not a JSON object.",
        "envelope.missing_field": "A required CloudEvents attribute is missing.",
        "envelope.extra_field": "The envelope carries an attribute this contract does not define.",
        "envelope.wrong_type": "An envelope attribute has the wrong JSON type.",
        "envelope.bad_value": "An envelope attribute has a value outside the allowed set.",
        "envelope.bad_format": "An envelope attribute does not have the required format.",
        "envelope.out_of_range": "An envelope attribute is too long, too short or out of range.",
        "envelope.bad_source": "`source` is not of the form /partners/<partner_id>.",
        "envelope.id_reused": "The event id already landed with other content (another "
        "SHA-256 of the message bytes): a re-send must repeat the bytes, a new event needs a "
        "new id.",
        "type.unknown": "`type` names no event type of this contract.",
        "type.unknown_version": "`type` names a known event family at a version not accepted.",
        "schema.missing_field": "A required data field is missing.",
        "schema.extra_field": "The data carries a field the type does not define.",
        "schema.wrong_type": "A data field has the wrong JSON type.",
        "schema.bad_value": "A data field has a value outside the allowed set.",
        "schema.bad_format": "A data field does not have the required format.",
        "schema.out_of_range": "A data field is too long, too short or out of range.",
        "time.no_offset": "A timestamp has no UTC offset.",
        "time.in_future": "A timestamp lies in the future beyond the allowed clock skew.",
        "authorise.unknown_partner": "The topic belongs to no registered partner.",
        "authorise.source_mismatch": "`source` names a partner other than the topic's owner.",
        "authorise.type_not_allowed": "The partner's role may not publish this event type.",
        "id_number.format": "The identity document number does not fit its id_type.",
        "id_number.birth_date": "The birth date inside the resident ID number is not a real date.",
        "id_number.checksum": "The resident ID number fails its GB 11643 check character.",
        "occupation.unknown": "The occupation code is neither a 2022 code nor a mapped old one.",
        "division.unknown": "The district code is not a Hangzhou division, current or retired.",
        "certificate_number.format": "The certificate number does not fit its scheme's structure.",
        "certificate_number.level_mismatch": "Position 16 of the number differs from the level.",
        "certificate_number.year_mismatch": "Positions 14-15 differ from the issue year.",
        "certificate.inconsistent": "Certificate type, scheme and level do not go together.",
        "evaluation.empty_correction": "A correction changes no field.",
        "control.unknown_family": "Control totals name an event family that does not exist.",
        "control.mismatched_families": "Counts, digests and id lists name different families.",
        "control.count_mismatch": "An id list's length differs from its count.",
        "control.digest_mismatch": "An id list does not hash to its digest.",
    }
)

# What a partner changes before sending the event again, one hint per reason code.
FIX_HINTS: Mapping[str, str] = MappingProxyType(
    {
        "size.too_large": "Split the record or drop unneeded fields; send events under 1 MiB.",
        "decode.not_utf8": "Encode the message as UTF-8 before publishing it.",
        "decode.not_json": "Publish one complete JSON document per message.",
        "decode.non_finite_number": "Send a number or null instead of NaN or Infinity.",
        "decode.too_deep": "Flatten the document to the structure the contract defines.",
        "decode.duplicate_key": "Send every key once per object.",
        "decode.nul_character": "Remove the NUL character from the text fields.",
        "decode.not_object": "Send a JSON object (a CloudEvent), not an array or a scalar.",
        "envelope.missing_field": "Add the CloudEvents attribute named by the JSON path.",
        "envelope.extra_field": "Remove the attribute named by the JSON path from the envelope.",
        "envelope.wrong_type": "Give the attribute the JSON type the contract documents.",
        "envelope.bad_value": "Use one of the values the contract documents for the attribute.",
        "envelope.bad_format": "Format the attribute as the contract documents it.",
        "envelope.out_of_range": "Keep the attribute within its documented length or range.",
        "envelope.bad_source": "Set source to /partners/ followed by your partner id.",
        "envelope.id_reused": "Re-send an event with its original bytes; give a new event a "
        "new id.",
        "type.unknown": "Set type to one of the event types in the contract.",
        "type.unknown_version": "Publish the event at a version the contract accepts.",
        "schema.missing_field": "Add the data field named by the JSON path.",
        "schema.extra_field": "Remove the data field named by the JSON path.",
        "schema.wrong_type": "Give the data field the JSON type the contract documents.",
        "schema.bad_value": "Use one of the values the contract documents for the field.",
        "schema.bad_format": "Format the field as the contract documents it.",
        "schema.out_of_range": "Keep the field within its documented length or range.",
        "time.no_offset": "Give the timestamp a UTC offset, for example +08:00.",
        "time.in_future": "Check the sending system's clock and the timestamp's offset.",
        "authorise.unknown_partner": "Publish only to the topic the city registered for you.",
        "authorise.source_mismatch": "Publish only your own events, your partner id in source.",
        "authorise.type_not_allowed": "Send only the event types your role is registered for.",
        "id_number.format": "Check the document number against its id_type.",
        "id_number.birth_date": "Check the birth date digits of the resident ID number.",
        "id_number.checksum": "Check the resident ID number as entered; its last character fails.",
        "occupation.unknown": "Use a 2022 national occupation code, or a mapped older code.",
        "division.unknown": "Use a Hangzhou division code from the reference data.",
        "certificate_number.format": "Check the certificate number against its scheme.",
        "certificate_number.level_mismatch": "Make position 16 of the number equal the level.",
        "certificate_number.year_mismatch": "Make positions 14-15 equal the issue year.",
        "certificate.inconsistent": "Send a certificate type, scheme and level that go together.",
        "evaluation.empty_correction": "Send a correction only when a field changes.",
        "control.unknown_family": "Count only the documented event families.",
        "control.mismatched_families": "Name the same families in counts, digests and id lists.",
        "control.count_mismatch": "Make each id list's length equal its count.",
        "control.digest_mismatch": "Hash the sorted id list as the contract documents.",
    }
)

WARNING_CODES: Mapping[str, str] = MappingProxyType(
    {
        "credit_code.checksum": "A unified social credit code fails its GB 32100 check "
        "(some early pilot codes do): accepted, flagged for review.",
        "occupation.legacy_code": "A pre-2022 occupation code was mapped to its 2022 code.",
        "division.retired": "The district code is a retired Hangzhou division.",
        "evaluation.result_inconsistent": "A pass with a score under 60, or a fail with both "
        "scores at 60 or more.",
    }
)

_STAGE_OF_PREFIX = {"size": "decode", "decode": "decode", "authorise": "authorise"}


def without_nul(text: str) -> str:
    """Partner-sent text as PostgreSQL can store it: NUL spelled as the JSON escape they wrote."""
    return text.replace("\x00", "\\u0000")


def stage_of(code: str) -> str:
    """The pipeline stage that refuses with a reason code: decode, validate or authorise."""
    return _STAGE_OF_PREFIX.get(code.partition(".")[0], "validate")


class SkillsyncError(Exception):
    """The project's errors, each kind named after what its caller does about it."""


class ConfigurationError(SkillsyncError):
    """A setting or a run's parameter is unusable: stop and name it; a retry meets it again."""


class ServiceUnavailable(SkillsyncError):
    """A service (the broker, PostgreSQL, Airflow) did not answer: back off and retry."""


class RunFailed(SkillsyncError):
    """This run's data fails a check it must pass: fail for good and alert; a retry would read
    the same data."""


class Rejection(SkillsyncError):
    """A verdict on one event: refused, routed to the rejects topic, and the consumer moves on."""

    def __init__(self, code: str, path: str, message: str) -> None:
        if code not in REASON_CODES:
            raise ValueError(f"unregistered reason code {code!r}")
        # A refusal may quote what the partner sent (a field's name), and it is stored.
        path, message = without_nul(path), without_nul(message)
        super().__init__(f"{code} at {path}: {message}")
        self.code = code
        self.path = path
        self.message = message
        self.stage = stage_of(code)

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "path": self.path, "message": self.message, "stage": self.stage}
