"""REQUEST authorizers: the identity sources, the authorizer function's call, its policy cached per identity for
`authorizerResultTtlInSeconds`, and the answers API Gateway gives when it fails or denies."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from local.facts import Functions
from local.gateway.events import authorizer_event
from local.gateway.iam import allows
from local.gateway.messages import Request, request_context_for
from local.gateway.responses import GatewayError
from local.gateway.spec import RestApi, Route


@dataclass
class _CachedPolicy:
    expires: float
    policy: dict[str, Any]
    principal_id: Any
    context: dict[str, Any]


class Authorizers:
    """The REST API's REQUEST authorizers with API Gateway's policy cache."""

    def __init__(self, api: RestApi, functions: Functions, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.api = api
        self.functions = functions
        self.clock = clock
        self._cache: dict[tuple[str, tuple[str, ...]], _CachedPolicy] = {}
        self._lock = threading.Lock()
        self.invocations = 0

    def authorize(self, route: Route, request: Request, path_params: Mapping[str, str]) -> dict[str, Any] | None:
        """The authorizer context for the function (None when the route has no authorizer); GatewayError when the
        request has no identity, the authorizer fails, or its policy does not allow the method."""
        found = self.api.authorizer(route)
        if found is None:
            return None
        name, spec = found
        headers, query = request.lower_headers, request.query()
        identity: list[str] = []
        for source in str(spec.get("identitySource") or "").split(","):
            source = source.strip()
            if source.startswith("method.request.header."):
                value = headers.get(source.removeprefix("method.request.header.").lower())
            elif source.startswith("method.request.querystring."):
                values = query.get(source.removeprefix("method.request.querystring."))
                value = values[-1] if values else None
            else:
                continue
            if not value:
                raise GatewayError("UNAUTHORIZED", "Unauthorized")  # no identity: the authorizer is not called
            identity.append(value)
        key = (name, tuple(identity))
        ttl = float(spec.get("authorizerResultTtlInSeconds", 300))
        method_arn = self.api.method_arn(request.method, request.path)
        with self._lock:
            cached = self._cache.get(key)
        if cached is None or cached.expires <= self.clock():
            cached = self._invoke(spec, route, request, path_params, method_arn)
            if ttl > 0:
                cached.expires = self.clock() + ttl
                with self._lock:
                    self._cache[key] = cached
        if not allows(cached.policy, method_arn):
            raise GatewayError("ACCESS_DENIED", "User is not authorized to access this resource")
        return {**cached.context, "principalId": cached.principal_id}

    def _invoke(self, spec: Mapping[str, Any], route: Route, request: Request, path_params: Mapping[str, str],
                method_arn: str) -> _CachedPolicy:
        function = self.functions.find(str(spec.get("authorizerUri")))
        event = authorizer_event(method_arn=method_arn, method=request.method, path=request.path,
                                 resource=route.template, header_items=request.header_items, query=request.query(),
                                 path_parameters=path_params,
                                 context=request_context_for(self.api, route, request, str(uuid.uuid4())))
        self.invocations += 1
        result = function.invoke(event, timeout=30)
        if not result.ok:
            if (result.error or {}).get("errorMessage") == "Unauthorized":
                raise GatewayError("UNAUTHORIZED", "Unauthorized")
            raise GatewayError("AUTHORIZER_FAILURE", "Internal server error" if not result.timed_out
                               else "Authorizer timed out")
        payload = result.payload if isinstance(result.payload, dict) else {}
        policy = payload.get("policyDocument")
        if not isinstance(policy, dict) or "principalId" not in payload:
            raise GatewayError("AUTHORIZER_CONFIGURATION_ERROR", "Internal server error")
        context = {k: v for k, v in (payload.get("context") or {}).items() if isinstance(v, str | int | float | bool)}
        return _CachedPolicy(0.0, policy, payload["principalId"], context)
