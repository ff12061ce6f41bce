"""IAM evaluation of the policy a REQUEST authorizer returns, for `execute-api:Invoke` on one method ARN."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Any


def allows(policy: Mapping[str, Any], method_arn: str) -> bool:
    """True when a statement allows `execute-api:Invoke` on `method_arn` and none denies it: a Deny wins."""
    allowed = False
    statements = policy.get("Statement") or []
    for st in statements if isinstance(statements, list) else [statements]:
        actions = st.get("Action") or []
        actions = [actions] if isinstance(actions, str) else actions
        if not any(fnmatch.fnmatchcase("execute-api:Invoke", a) for a in actions):
            continue
        resources = st.get("Resource") or []
        resources = [resources] if isinstance(resources, str) else resources
        if not any(fnmatch.fnmatchcase(method_arn, r) for r in resources):
            continue
        if st.get("Effect") == "Deny":
            return False
        if st.get("Effect") == "Allow":
            allowed = True
    return allowed
