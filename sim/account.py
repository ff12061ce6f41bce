"""The simulated AWS account: its ID, its ARNs, and Pulumi's autoname suffix made deterministic."""

from __future__ import annotations

import hashlib

ACCOUNT_ID = "123456789012"


def suffix(seed: str) -> str:
    # Pulumi autonames with 7 random hex characters; a hash keeps the twin's names stable across runs.
    return hashlib.sha256(seed.encode()).hexdigest()[:7]


def arn(service: str, region: str, resource: str) -> str:
    return f"arn:aws:{service}:{region}:{ACCOUNT_ID}:{resource}"
