"""CloudWatch Logs: retention periods."""

from __future__ import annotations

from typing import Any

from sim.rules.core import CloudRejection, rule

LOG_RETENTION = {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                 3288, 3653}


@rule("aws:cloudwatch/logGroup:LogGroup")
def _log_group(inputs: dict[str, Any]) -> None:
    if inputs.get("retentionInDays") not in LOG_RETENTION:
        raise CloudRejection(f"retentionInDays {inputs.get('retentionInDays')}")
