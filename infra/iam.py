"""IAM policy documents, written once: trust policies and Allow statements every component builds its roles from.

Pure functions returning the JSON AWS reads (Outputs may sit inside a statement's resources; the caller renders
the document with `pulumi.Output.json_dumps`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

POLICY_VERSION = "2012-10-17"


def assume_role_policy(service: str = "lambda.amazonaws.com") -> str:
    """A trust policy letting one AWS service (Lambda, EKS, EC2) assume the role."""
    return json.dumps({
        "Version": POLICY_VERSION,
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    })


def irsa_trust_policy(oidc_provider_arn: str, issuer_url: str, namespace: str, service_account: str) -> str:
    """A role only `namespace/service_account` of this cluster can assume, with a token minted for STS."""
    issuer = issuer_url.removeprefix("https://")
    return json.dumps({
        "Version": POLICY_VERSION,
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": oidc_provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {
                f"{issuer}:aud": "sts.amazonaws.com",
                f"{issuer}:sub": f"system:serviceaccount:{namespace}:{service_account}",
            }},
        }],
    })


def statement(actions: Sequence[str], resources: Sequence[Any], sid: str | None = None) -> dict[str, Any]:
    """One Allow statement; actions are listed explicitly, never with wildcards."""
    if not actions or any("*" in a for a in actions):
        raise ValueError(f"IAM actions must be explicit, got {list(actions)}")
    st: dict[str, Any] = {"Effect": "Allow", "Action": sorted(actions), "Resource": list(resources)}
    if sid:
        st["Sid"] = sid
    return st


def policy_document(statements: Sequence[Any]) -> dict[str, Any]:
    """An identity policy of `statements` (render it with `pulumi.Output.json_dumps` when they hold Outputs)."""
    return {"Version": POLICY_VERSION, "Statement": list(statements)}
