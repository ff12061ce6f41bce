"""API Gateway: REST APIs imported from an OpenAPI body."""

from __future__ import annotations

import json
from typing import Any

from sim.rules.core import CloudRejection, rule


@rule("aws:apigateway/restApi:RestApi")
def _rest_api(inputs: dict[str, Any]) -> None:
    body = inputs.get("body")
    if body is None:
        return
    try:
        doc = json.loads(body)
    except json.JSONDecodeError as exc:
        raise CloudRejection(f"body is not JSON: {exc}") from None
    if not str(doc.get("openapi", "")).startswith("3.0"):
        raise CloudRejection("API Gateway imports OpenAPI 3.0.x documents")
    for path, ops in doc.get("paths", {}).items():
        for method, op in ops.items():
            if method.startswith("x-") or method == "parameters":
                continue
            integration = op.get("x-amazon-apigateway-integration")
            if not integration:
                raise CloudRejection(f"{method.upper()} {path} has no integration")
            if integration.get("type") == "aws_proxy" and integration.get("httpMethod") != "POST":
                raise CloudRejection(f"{method.upper()} {path}: Lambda proxy integrations must call with "
                                     "httpMethod POST")
