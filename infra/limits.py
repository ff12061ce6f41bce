"""What AWS accepts, written once: the program validates its config with these and the simulation's rules reject
with the same values (pure data, no Pulumi, so `infra.config` and `sim.rules` both import it).
"""

from __future__ import annotations

import re

#: CloudWatch Logs accepts only these retention periods (PutRetentionPolicy).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
                      2922, 3288, 3653)

#: Graviton (arm64) EC2 instance types: a `g` after the generation digit (`t4g.small`, `m7gd.large`, `c6gn.xlarge`).
GRAVITON_INSTANCE_TYPE = re.compile(r"^[a-z]+\d+g[a-z]*\.")


def is_graviton(instance_type: str) -> bool:
    """Whether the instance type runs arm64 (an arm64 AMI boots only on these)."""
    return bool(GRAVITON_INSTANCE_TYPE.match(instance_type))
