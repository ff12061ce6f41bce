"""Pulumi dynamic resources: what their provider's `check` would refuse at `pulumi up` (the same function)."""

from __future__ import annotations

from typing import Any

from infra.gate import GATE_TYPE, input_failures
from sim.rules.core import CloudRejection, revealed, rule


@rule(GATE_TYPE)
def _canary_gate(inputs: dict[str, Any]) -> None:
    # The provider gets secrets unwrapped (it does not accept secrets), so it checks the kubeconfig's text.
    failures = [f"{prop}: {why}" for prop, why in input_failures({k: revealed(v) for k, v in inputs.items()})]
    if failures:
        raise CloudRejection("; ".join(failures))
