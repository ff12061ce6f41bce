"""IAM: policy documents (trust and inline), OIDC identity providers."""

from __future__ import annotations

import json
from typing import Any

from sim.rules.core import CloudRejection, rule


def _policy(document: Any) -> dict[str, Any]:
    try:
        doc = json.loads(document) if isinstance(document, str) else document
    except json.JSONDecodeError as exc:
        raise CloudRejection(f"policy is not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("Version") != "2012-10-17" or not doc.get("Statement"):
        raise CloudRejection("policy needs Version 2012-10-17 and at least one Statement")
    for st in doc["Statement"]:
        if st.get("Effect") not in ("Allow", "Deny") or not (st.get("Action") or st.get("NotAction")):
            raise CloudRejection(f"statement {st} needs an Effect and Actions")
    return doc


@rule("aws:iam/role:Role")
def _iam_role(inputs: dict[str, Any]) -> None:
    doc = _policy(inputs.get("assumeRolePolicy"))
    for st in doc["Statement"]:
        if "Principal" not in st:
            raise CloudRejection("a trust policy statement needs a Principal")


@rule("aws:iam/rolePolicy:RolePolicy")
def _iam_role_policy(inputs: dict[str, Any]) -> None:
    doc = _policy(inputs.get("policy"))
    for st in doc["Statement"]:
        if "Resource" not in st and "NotResource" not in st:
            raise CloudRejection(f"statement {st} has no Resource")


@rule("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
def _oidc_provider(inputs: dict[str, Any]) -> None:
    if not str(inputs.get("url") or "").startswith("https://"):
        raise CloudRejection(f"url {inputs.get('url')!r} is not https")
    if not inputs.get("clientIdLists"):
        raise CloudRejection("clientIdLists is empty")
