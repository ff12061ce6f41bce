"""Helm releases (kubernetes:helm.sh/v3:Release): pinned charts, secure repositories, release names."""

from __future__ import annotations

import re
from typing import Any

from sim.rules.core import CloudRejection, rule
from sim.rules.kubernetes import DNS_LABEL

_EXACT_VERSION = re.compile(r"^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$")


@rule("kubernetes:helm.sh/v3:Release")
def _helm_release(inputs: dict[str, Any]) -> None:
    if not inputs.get("chart"):
        raise CloudRejection("chart is not set")
    if not _EXACT_VERSION.match(str(inputs.get("version") or "")):
        raise CloudRejection(f"version {inputs.get('version')!r} is not an exact chart version (unpinned charts "
                             "change under a later `pulumi up`)")
    repo = str((inputs.get("repositoryOpts") or {}).get("repo") or "")
    if repo and not repo.startswith(("https://", "oci://")):
        raise CloudRejection(f"repository {repo!r} is not https:// or oci://")
    release = str(inputs.get("name") or "")
    if release and (len(release) > 53 or not DNS_LABEL.match(release)):
        raise CloudRejection(f"release name {release!r} must be a DNS-1123 label of at most 53 characters")
