"""CloudWatch Logs: retention periods."""

from __future__ import annotations

from typing import Any

from infra.limits import LOG_RETENTION_DAYS
from sim.rules.core import CloudRejection, rule

LOG_RETENTION = frozenset(LOG_RETENTION_DAYS)


@rule("aws:cloudwatch/logGroup:LogGroup")
def _log_group(inputs: dict[str, Any]) -> None:
    if inputs.get("retentionInDays") not in LOG_RETENTION:
        raise CloudRejection(f"retentionInDays {inputs.get('retentionInDays')}")
