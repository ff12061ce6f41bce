"""Real API Gateway proxy events (REST API, payload v1) for driving handlers, and readers for their responses.

`tests/events/apigw_proxy_v1.json` is the event `sam local generate-event apigateway aws-proxy` prints; `api_event`
builds the event with the twin's own builder (`local.gateway.events`) from that event's headers, account, API id
and stage variables and the given request, so every handler test sees exactly the fields a function in the twin
(and a deployed one) sees, including the ones it should ignore.
"""

from __future__ import annotations

import base64
import copy
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from local.gateway.events import proxy_event, request_context

EVENTS_DIR = Path(__file__).resolve().parent.parent / "events"


@cache
def _template(name: str) -> dict[str, Any]:
    return json.loads((EVENTS_DIR / name).read_text())  # type: ignore[no-any-return]


def load_event(name: str = "apigw_proxy_v1.json") -> dict[str, Any]:
    """A fresh deep copy of a stored event (safe to mutate)."""
    return copy.deepcopy(_template(name))


def api_event(
    method: str,
    path: str,
    *,
    resource: str | None = None,
    path_parameters: Mapping[str, str] | None = None,
    query: Mapping[str, str | Sequence[str]] | None = None,
    body: Any = None,
    headers: Mapping[str, str] | None = None,
    base64_body: bool = False,
    stage: str = "prod",
    request_id: str | None = None,
) -> dict[str, Any]:
    """A v1 proxy event for `method path` as API Gateway delivers it.

    `resource` is the matched route template (`/todos/{id}`; defaults to `path`). `body` may be a str (sent
    as is, so malformed JSON can be tested) or any JSON value (serialised). Absent query/path parameters are
    `null`, as API Gateway sends them. A JSON `Content-Type` is added when there is a body and none is given.
    """
    template = _template("apigw_proxy_v1.json")
    method = method.upper()
    resource = resource or path
    multi = {k: [v] if isinstance(v, str) else list(v) for k, v in (query or {}).items()}

    merged = dict(template["headers"])
    wanted = dict(headers or {})
    if body is not None and not any(k.lower() == "content-type" for k in wanted):
        wanted["Content-Type"] = "application/json"
    for name, value in wanted.items():
        for existing in [k for k in merged if k.lower() == name.lower()]:
            del merged[existing]
        merged[name] = value

    if body is None:
        text = None
    elif isinstance(body, str | bytes):
        text = body.decode() if isinstance(body, bytes) else body
    else:
        text = json.dumps(body)
    if text is not None and base64_body:
        text = base64.b64encode(text.encode()).decode()

    lower = {k.lower(): v for k, v in merged.items()}
    sam = template["requestContext"]
    context = request_context(account_id=sam["accountId"], api_id=sam["apiId"], stage=stage, resource=resource,
                              method=method, path=path, request_id=request_id or str(uuid.uuid4()),
                              source_ip=sam["identity"]["sourceIp"], host=lower.get("host", ""),
                              user_agent=lower.get("user-agent"), now=time.time())
    return proxy_event(method=method, path=path, resource=resource, header_items=list(merged.items()), query=multi,
                       path_parameters=dict(path_parameters or {}), body=text,
                       is_base64=bool(base64_body and text is not None), context=context,
                       stage_variables=template.get("stageVariables"))


@dataclass
class FakeLambdaContext:
    """The attributes of the Lambda runtime's context object that handlers and Powertools read."""

    function_name: str = "test-function"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    timeout_ms: int = 10_000
    log_group_name: str = "/aws/lambda/test-function"
    log_stream_name: str = "2026/01/01/[$LATEST]0123456789abcdef"
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:eu-west-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.timeout_ms - int((time.monotonic() - self._started) * 1000))


def lambda_context(function_name: str = "test-function", **kwargs: Any) -> FakeLambdaContext:
    """A fresh context (new request id) for one invocation."""
    return FakeLambdaContext(function_name=function_name, **kwargs)


def response_headers(response: Mapping[str, Any]) -> dict[str, str]:
    """A proxy response's headers, lower-cased names, from `headers` and/or `multiValueHeaders`."""
    out: dict[str, str] = {}
    for name, values in (response.get("multiValueHeaders") or {}).items():
        out[name.lower()] = ",".join(str(v) for v in values)
    for name, value in (response.get("headers") or {}).items():
        out[name.lower()] = str(value)
    return out


def response_json(response: Mapping[str, Any]) -> Any:
    """A proxy response's body parsed as JSON (base64 decoded first when flagged)."""
    body = response.get("body") or ""
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return json.loads(body)
