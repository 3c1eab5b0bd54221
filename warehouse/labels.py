"""What the warehouse's codes mean to a reader: catalogue messages for the report and the portal."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from schemas.i18n import N_, gettext

SEVERITIES = ("error", "warning", "info")
SEVERITY_LABELS: Mapping[str, str] = MappingProxyType({
    "error": N_("error"), "warning": N_("warning"), "info": N_("info")})

DISCREPANCY_KINDS: Mapping[str, str] = MappingProxyType({
    "semantic_duplicate": N_("The same enrollment was reported by another partner first."),
    "completion_without_enrollment": N_("A completion names an enrollment never received."),
    "certificate_without_passing_evaluation": N_(
        "A certificate has no passing evaluation for its occupation and level."),
    "level_mismatch": N_("The certificate's level differs from its evaluation's level."),
    "certificate_number_conflict": N_("One certificate number was issued to two people."),
    "double_claim": N_("A subsidy for this person, occupation and level was already claimed."),
    "repeated_record": N_("A record reported again under another event id; the first counts."),
    "repeated_change": N_("A second withdrawal or revocation of a record; the first applies."),
    "change_without_record": N_("A change names a record this partner never reported for "
                                "this person."),
    "control_total_gap": N_("The control totals differ from the events that landed."),
    "control_totals_late": N_("Control totals arrived after the look-back: too late to check "
                              "the day against."),
})

SCORE_LABELS: Mapping[str, str] = MappingProxyType({
    "received": N_("received"), "valid": N_("valid"), "rejected": N_("refused"),
    "duplicates": N_("duplicates"), "late": N_("late"), "missing": N_("missing"),
    "extra": N_("extra"),
})

SUBSIDY_REASONS: Mapping[str, str] = MappingProxyType({
    "eligible": N_("eligible"),
    "revoked": N_("certificate revoked"),
    "shared_number": N_("certificate number claimed by two people"),
    "paired_certificate": N_("second certificate of one evaluation"),
    "already_claimed": N_("already claimed for this occupation and level"),
    "no_rule": N_("no subsidy rule for this certificate"),
})

CERTIFICATE_TYPES: Mapping[str, str] = MappingProxyType({
    "skill_level": N_("skill level certificate"),
    "special_ability": N_("special vocational ability certificate"),
})

STATUSES: Mapping[str, str] = MappingProxyType({
    "in_force": N_("in force"), "revoked": N_("revoked"), "pass": N_("pass"),
    "fail": N_("fail"), "active": N_("active"), "withdrawn": N_("withdrawn"),
    # Airflow's states of a run.
    "success": N_("success"), "failed": N_("failed"), "running": N_("running"),
    "queued": N_("queued"),
})

ROLE_LABELS: Mapping[str, str] = MappingProxyType({
    "training_platform": N_("training platform"),
    "technician_college": N_("technician college"),
    "evaluation_org": N_("evaluation organisation"),
    "district_bureau": N_("district bureau"),
})


def label(labels: Mapping[str, str], code: str | None) -> str:
    """The code's meaning in the current locale; an unknown code is shown as it is."""
    if code is None:
        return ""
    message = labels.get(code)
    return gettext(message) if message is not None else code


def level_label(level: int | None) -> str:
    if level is None:
        return gettext("no level")
    return gettext("level %(level)s") % {"level": level}
