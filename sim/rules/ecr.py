"""ECR: repository names and tag mutability."""

from __future__ import annotations

import re
from typing import Any

from sim.rules.core import CloudRejection, rule

_ECR_NAME = re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")


@rule("aws:ecr/repository:Repository")
def _ecr_repository(inputs: dict[str, Any]) -> None:
    repo = inputs.get("name")
    if repo is not None and (not 2 <= len(repo) <= 256 or not _ECR_NAME.match(repo)):
        raise CloudRejection(f"repository name {repo!r} breaks ECR's naming rules")
    if inputs.get("imageTagMutability", "MUTABLE") not in ("MUTABLE", "IMMUTABLE", "MUTABLE_WITH_EXCLUSION",
                                                           "IMMUTABLE_WITH_EXCLUSION"):
        raise CloudRejection(f"imageTagMutability {inputs.get('imageTagMutability')!r}")
