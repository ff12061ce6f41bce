"""Istio custom resources: the vendored CRD schemas (closed), their CEL rules, deprecated and renamed fields."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema import validators

from mesh.durations import parse_duration
from sim.rules.core import CloudRejection, Rule, rule

_ISTIO_SCHEMAS = Path(__file__).resolve().parents[2] / "mesh" / "schemas"
_ISTIO_DEPRECATED = Path(__file__).resolve().parent / "istio_deprecated.json"


def _closed(node: Any) -> Any:
    # The API server prunes unknown fields silently; a misspelt field would vanish, so treat it as a rejection.
    if isinstance(node, dict):
        node = {k: _closed(v) for k, v in node.items()}
        if "properties" in node and "additionalProperties" not in node and \
                not node.get("x-kubernetes-preserve-unknown-fields"):
            node["additionalProperties"] = False
        return node
    if isinstance(node, list):
        return [_closed(v) for v in node]
    return node


def _istio_duration_ok(value: Any) -> bool:
    try:
        return bool(parse_duration(value) >= 0.001)
    except ValueError:
        return False


# The CRDs' CEL rules our specs can reach; other rules concern fields the builders never set.
_CEL_CHECKS: dict[str, Callable[[Any], bool]] = {
    "duration(self) >= duration('1ms')": _istio_duration_ok,
    'self.all(key, !key.contains("*"))': lambda v: all("*" not in k for k in v),
    "self.all(key, key.size() != 0)": lambda v: all(bool(k) for k in v),
    '!self.contains("*")': lambda v: "*" not in v,
}


@functools.cache
def _istio_validator(api_version: str, kind: str) -> Any:
    def cel(validator: Any, rules: list[dict[str, str]], instance: Any, schema: dict[str, Any]) -> Any:
        for item in rules:
            check = _CEL_CHECKS.get(item["rule"])
            if check is not None and not check(instance):
                yield jsonschema.ValidationError(f"{instance!r}: {item.get('message', item['rule'])}")

    index = json.loads((_ISTIO_SCHEMAS / "_index.json").read_text())["files"]
    schema = _closed(json.loads((_ISTIO_SCHEMAS / index[f"{api_version}/{kind}"]).read_text()))
    schema["properties"].pop("status", None)
    return validators.extend(jsonschema.Draft7Validator, {"x-kubernetes-validations": cel})(schema)


def _deprecated_paths(node: Any, pattern: list[str], where: str) -> list[str]:
    if not pattern:
        return [where]
    head, rest = pattern[0], pattern[1:]
    is_list = head.endswith("[]")
    key = head.removesuffix("[]")
    if not isinstance(node, dict) or key not in node:
        return []
    value = node[key]
    if not is_list:
        return _deprecated_paths(value, rest, f"{where}.{key}")
    found: list[str] = []
    for i, item in enumerate(value if isinstance(value, list) else []):
        found += _deprecated_paths(item, rest, f"{where}.{key}[{i}]")
    return found


# Fields the schemas still carry (undocumented) for old clients but Istio replaced; the deprecated.json list only
# has fields whose description says "Deprecated", so these are named here with their replacement.
ISTIO_RENAMED_FIELDS = {"consecutiveErrors": "consecutive5xxErrors", "mirrorPercent": "mirrorPercentage",
                        "mirror_percent": "mirrorPercentage", "allowOrigin": "allowOrigins"}


def _renamed_fields(node: Any, where: str) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ISTIO_RENAMED_FIELDS:
                found.append(f"{where}.{key} is replaced by {ISTIO_RENAMED_FIELDS[key]}")
            found += _renamed_fields(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _renamed_fields(value, f"{where}[{i}]")
    return found


def check_spec(api_version: str, kind: str, spec: dict[str, Any]) -> None:
    """Raise `CloudRejection` unless `spec` is one the Istio CRD `api_version/kind` admits (schema closed against
    unknown fields, the CEL rules our specs reach, and no deprecated or renamed field)."""
    deprecated = json.loads(_ISTIO_DEPRECATED.read_text()).get(kind, [])
    for entry in deprecated:
        found = _deprecated_paths({"spec": spec}, entry["path"].split("."), "")
        if found:
            raise CloudRejection(f"{found[0].lstrip('.')} is deprecated ({entry['description']})")
    renamed = _renamed_fields(spec, "spec")
    if renamed:
        raise CloudRejection(renamed[0])
    errors = sorted(_istio_validator(api_version, kind).iter_errors({"spec": spec}),
                    key=lambda e: list(e.absolute_path))
    if errors:
        where = ".".join(str(p) for p in errors[0].absolute_path) or "spec"
        raise CloudRejection(f"{where}: {errors[0].message} (Istio CRD schema)")


def _istio_rule(api_version: str, kind: str) -> Rule:
    def check_istio(inputs: dict[str, Any]) -> None:
        check_spec(api_version, kind, inputs.get("spec") or {})

    return check_istio


for _crd in json.loads((_ISTIO_SCHEMAS / "_index.json").read_text())["files"]:
    _api_group_version, _, _kind = _crd.rpartition("/")
    rule(f"kubernetes:{_api_group_version}:{_kind}")(_istio_rule(_api_group_version, _kind))
