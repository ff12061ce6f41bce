"""Validate built manifests against the vendored Istio CRD schemas, more strictly than the API server.

Stricter in one way on purpose: every object that lists ``properties`` is closed
(``additionalProperties: false``), so a misspelt or outdated field (``consecutiveErrors``) fails here
instead of being pruned silently by Kubernetes. The CEL rules the CRDs carry are checked for the
ones our specs can hit (durations >= 1ms, no wildcard keys).
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema import validators

from mesh.durations import parse_duration

SCHEMAS = Path(__file__).resolve().parents[2] / "mesh" / "schemas"


def _close(node: Any) -> Any:
    if isinstance(node, dict):
        node = {k: _close(v) for k, v in node.items()}
        if (
            "properties" in node
            and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            node["additionalProperties"] = False
        return node
    if isinstance(node, list):
        return [_close(v) for v in node]
    return node


def _cel(validator: Any, rules: list[dict[str, str]], instance: Any, schema: dict[str, Any]) -> Any:
    for rule in rules:
        text, message = rule["rule"], rule.get("message", rule["rule"])
        if text == "duration(self) >= duration('1ms')":
            try:
                ok = parse_duration(instance) >= 0.001
            except ValueError:
                ok = False
        elif text == 'self.all(key, !key.contains("*"))':
            ok = all("*" not in key for key in instance)
        elif text == "self.all(key, key.size() != 0)":
            ok = all(key for key in instance)
        elif text == '!self.contains("*")':
            ok = "*" not in instance
        else:
            continue  # other rules concern fields our builders never set
        if not ok:
            yield jsonschema.ValidationError(f"{instance!r}: {message}")


_Validator = validators.extend(jsonschema.Draft7Validator, {"x-kubernetes-validations": _cel})


@lru_cache
def _validator(api_version: str, kind: str) -> Any:
    index = json.loads((SCHEMAS / "_index.json").read_text())["files"]
    schema = json.loads((SCHEMAS / index[f"{api_version}/{kind}"]).read_text())
    schema = _close(copy.deepcopy(schema))
    schema["properties"].pop("status", None)
    return _Validator(schema)


#: Fields the schema still lists for old clients but Istio has renamed; our builders must not emit them.
DEPRECATED_FIELDS = frozenset({"consecutiveErrors", "mirror_percent", "mirrorPercent", "allowOrigin"})


def _deprecated(node: Any, path: str = "spec") -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in DEPRECATED_FIELDS:
                found.append(f"{path}.{key}")
            found += _deprecated(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _deprecated(value, f"{path}[{i}]")
    return found


def validate(manifest: dict[str, Any]) -> dict[str, Any]:
    """Raise ``jsonschema.ValidationError`` unless the manifest is a valid custom resource; return it."""
    assert set(manifest) == {"apiVersion", "kind", "metadata", "spec"}, sorted(manifest)
    deprecated = _deprecated(manifest["spec"])
    if deprecated:
        raise jsonschema.ValidationError(f"deprecated Istio fields: {deprecated}")
    assert manifest["metadata"]["name"] and manifest["metadata"]["namespace"]
    _validator(manifest["apiVersion"], manifest["kind"]).validate({"spec": manifest["spec"]})
    return manifest
