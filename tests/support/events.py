"""Valid and broken events for the tests' own partners, built from the contract's examples."""

from __future__ import annotations

from typing import Any

from partners.samples import encode, enrollment, registry_with, resident_id

__all__ = ["encode", "enrollment", "poison", "registry_with", "resident_id"]


def poison(partner_id: str) -> dict[str, bytes]:
    """One refused event per reason code, each otherwise a valid event of the partner."""
    def variant(n: int) -> dict[str, Any]:
        return enrollment(partner_id, 9_000_000 + n)

    duplicated = encode(variant(1)).replace(b'"specversion"', b'"id":"dup","specversion"', 1)
    foreign = variant(2)
    foreign["source"] = "/partners/zjgj"
    bad_checksum = variant(3)
    number = bad_checksum["data"]["learner"]["id_number"]
    bad_checksum["data"]["learner"]["id_number"] = number[:17] + ("1" if number[17] != "1" else "2")
    extra = variant(4)
    # A NUL in what a refusal names (the field, the claimed id): PostgreSQL text cannot hold it.
    extra["data"]["sur\u0000prise"] = 1
    nul_in_id = encode(variant(6)).replace(b'"id":"', b'"id":"\\u0000', 1)
    raw = encode(variant(5))
    return {
        "decode.non_finite_number": raw.replace(b'"hours":64', b'"hours":NaN'),
        "decode.nul_character": raw.replace(b'"name":"', b'"name":"\\u0000', 1),
        "decode.too_deep": b'{"a":' * 5000 + b"1" + b"}" * 5000,
        "type.unknown": raw.replace(b"enrollment.created.v1", b"enrollment.vanished.v1"),
        "decode.not_utf8": b"\xff\xfe{}",
        "decode.not_json": b"{not json",
        "decode.duplicate_key": duplicated,
        "size.too_large": b'{"pad": "' + b"x" * (1024 * 1024 + 10) + b'"}',
        "authorise.source_mismatch": encode(foreign),
        "id_number.checksum": encode(bad_checksum),
        "schema.extra_field": encode(extra),
        "envelope.bad_format": nul_in_id,
    }
