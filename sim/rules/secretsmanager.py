"""Secrets Manager: secrets' recovery windows and secret versions."""

from __future__ import annotations

from typing import Any

from sim.rules.core import CloudRejection, revealed, rule, whole


@rule("aws:secretsmanager/secretVersion:SecretVersion")
def _secret_version(inputs: dict[str, Any]) -> None:
    given = [k for k in ("secretString", "secretBinary") if revealed(inputs.get(k))]
    if len(given) != 1:
        raise CloudRejection("exactly one of secretString or secretBinary is required")


@rule("aws:secretsmanager/secret:Secret")
def _secret(inputs: dict[str, Any]) -> None:
    window = whole(inputs.get("recoveryWindowInDays", 30))
    if window is None or not (window == 0 or 7 <= window <= 30):
        raise CloudRejection(f"recoveryWindowInDays {window} is not 0 or 7-30")
