"""Validate a built manifest the way the simulation's Istio rule does (`sim.rules.istio.check_spec`: the vendored
CRD schemas closed against unknown fields, their CEL rules, no deprecated or renamed field), for tests that hold a
bare manifest rather than a captured graph. One validator: this module only adapts its error to jsonschema's."""

from __future__ import annotations

from typing import Any

import jsonschema

from sim.rules.core import CloudRejection
from sim.rules.istio import check_spec


def validate(manifest: dict[str, Any]) -> dict[str, Any]:
    """Raise ``jsonschema.ValidationError`` unless the manifest is a valid custom resource; return it."""
    assert set(manifest) == {"apiVersion", "kind", "metadata", "spec"}, sorted(manifest)
    assert manifest["metadata"]["name"] and manifest["metadata"]["namespace"]
    try:
        check_spec(manifest["apiVersion"], manifest["kind"], manifest["spec"])
    except CloudRejection as rejection:
        raise jsonschema.ValidationError(str(rejection)) from rejection
    return manifest
