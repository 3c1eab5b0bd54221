"""Full transitive compatibility between all versions of each event type's JSON Schema.

Versions A and B of a type are compatible when a reader of either version can read data of the
other: readers project events onto the fields they know, so the only allowed change is adding an
optional field. Removing, retyping, re-constraining a field or changing whether it is required
breaks one direction or the other. The closed content model still holds at the door: each event
is validated against the version its `type` names.
"""

from __future__ import annotations

import itertools
import sys
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

Schema = Mapping[str, Any]

# Annotations that change no data's validity.
_ANNOTATIONS = frozenset({"title", "description", "default", "examples", "$comment"})
_VERSION_ATTRIBUTE = "type"  # differs between versions by design: it names the version


def incompatibilities(old: Schema, new: Schema) -> list[str]:
    """Why data of one version cannot be read under the other; empty when compatible."""
    problems: list[str] = []
    _compare(old, _resolve(old, old), new, _resolve(new, new), "$", problems, top_level=True)
    return problems


def transitive_incompatibilities(versions: Sequence[Schema]) -> list[str]:
    """Problems between every pair of versions, not only neighbours."""
    problems = []
    for (i, old), (j, new) in itertools.combinations(enumerate(versions, 1), 2):
        problems += [f"v{i} vs v{j}: {problem}" for problem in incompatibilities(old, new)]
    return problems


def check_shipped() -> dict[str, list[str]]:
    """Problems per event family across the shipped schema files, the sync feed's included
    (its families are named "sync.<kind>.<operation>")."""
    from schemas.schema_files import SYNC_SCHEMA_DIR, load_shipped

    by_family: dict[str, list[tuple[int, Schema]]] = defaultdict(list)
    for prefix, shipped in (("", load_shipped()), ("sync.", load_shipped(SYNC_SCHEMA_DIR))):
        for stem, schema in shipped.items():
            family, _, version = stem.rpartition(".v")
            by_family[prefix + family].append((int(version), schema))
    return {
        family: transitive_incompatibilities([schema for _, schema in sorted(versions)])
        for family, versions in by_family.items()
    }


def _resolve(root: Schema, node: Schema) -> Schema:
    while "$ref" in node:
        reference = node["$ref"]
        if not reference.startswith("#/$defs/"):
            raise ValueError(f"unsupported reference {reference!r}")
        node = root["$defs"][reference.removeprefix("#/$defs/")]
    return node


def _constraints(node: Schema) -> dict[str, Any]:
    return {
        key: value
        for key, value in node.items()
        if key not in _ANNOTATIONS
        and key not in {"properties", "required", "items", "anyOf", "additionalProperties"}
    }


def _compare(
    old_root: Schema,
    old: Schema,
    new_root: Schema,
    new: Schema,
    path: str,
    problems: list[str],
    top_level: bool = False,
) -> None:
    if _constraints(old) != _constraints(new):
        problems.append(f"{path}: type or constraints changed")
        return
    if "anyOf" in old or "anyOf" in new:
        old_branches, new_branches = old.get("anyOf", []), new.get("anyOf", [])
        if len(old_branches) != len(new_branches):
            problems.append(f"{path}: the set of accepted types changed")
            return
        for old_branch, new_branch in zip(old_branches, new_branches, strict=True):
            _compare(
                old_root,
                _resolve(old_root, old_branch),
                new_root,
                _resolve(new_root, new_branch),
                path,
                problems,
            )
    if "items" in old or "items" in new:
        if "items" not in old or "items" not in new:
            problems.append(f"{path}: array items changed")
            return
        _compare(
            old_root,
            _resolve(old_root, old["items"]),
            new_root,
            _resolve(new_root, new["items"]),
            f"{path}[]",
            problems,
        )
    if "additionalProperties" in old or "additionalProperties" in new:
        old_extra, new_extra = old.get("additionalProperties"), new.get("additionalProperties")
        if isinstance(old_extra, Mapping) and isinstance(new_extra, Mapping):
            old_extra_node = _resolve(old_root, old_extra)
            new_extra_node = _resolve(new_root, new_extra)
            _compare(old_root, old_extra_node, new_root, new_extra_node, f"{path}.*", problems)
        elif isinstance(old_extra, Mapping) != isinstance(new_extra, Mapping):
            problems.append(f"{path}: the values of a map changed type")
    if "properties" in old or "properties" in new:
        _compare_objects(old_root, old, new_root, new, path, problems, top_level)


def _compare_objects(
    old_root: Schema,
    old: Schema,
    new_root: Schema,
    new: Schema,
    path: str,
    problems: list[str],
    top_level: bool,
) -> None:
    old_fields, new_fields = old.get("properties", {}), new.get("properties", {})
    old_required, new_required = set(old.get("required", ())), set(new.get("required", ()))
    for name in old_fields.keys() - new_fields.keys():
        problems.append(f"{path}.{name}: removed")
    for name in new_fields.keys() - old_fields.keys():
        if name in new_required:
            problems.append(f"{path}.{name}: added as required (old data lacks it)")
    for name in old_fields.keys() & new_fields.keys():
        if top_level and name == _VERSION_ATTRIBUTE:
            continue
        field_path = f"{path}.{name}"
        if (name in old_required) != (name in new_required):
            problems.append(f"{field_path}: changed between required and optional")
        _compare(
            old_root,
            _resolve(old_root, old_fields[name]),
            new_root,
            _resolve(new_root, new_fields[name]),
            field_path,
            problems,
        )


def main() -> int:
    failed = False
    for family, problems in sorted(check_shipped().items()):
        for problem in problems:
            failed = True
            print(f"{family}: {problem}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
