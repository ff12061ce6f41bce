"""SQS: queue attribute ranges and encryption."""

from __future__ import annotations

from typing import Any

from sim.rules.core import CloudRejection, rule

_SQS_RANGES = {"messageRetentionSeconds": (60, 1_209_600), "visibilityTimeoutSeconds": (0, 43_200),
               "delaySeconds": (0, 900), "receiveWaitTimeSeconds": (0, 20), "maxMessageSize": (1024, 1_048_576)}


@rule("aws:sqs/queue:Queue")
def _sqs_queue(inputs: dict[str, Any]) -> None:
    for key, (lo, hi) in _SQS_RANGES.items():
        value = inputs.get(key)
        if value is not None and not lo <= int(value) <= hi:
            raise CloudRejection(f"{key} {int(value)} must be {lo} to {hi}")
    if inputs.get("sqsManagedSseEnabled") and inputs.get("kmsMasterKeyId"):
        raise CloudRejection("sqsManagedSseEnabled and kmsMasterKeyId are exclusive")
