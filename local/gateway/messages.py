"""One request as the gateway received it (after the stage prefix), the response it answers, and the
`requestContext` API Gateway describes the request with (to functions and to authorizers)."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Any

from local.gateway.events import request_context
from local.gateway.spec import RestApi, Route
from local.processes import LOOPBACK
from sim.account import ACCOUNT_ID


@dataclass
class Request:
    method: str
    path: str                                  # after the stage, decoded
    raw_query: str
    header_items: list[tuple[str, str]]
    body: bytes
    source_ip: str

    @property
    def headers(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for k, v in self.header_items:
            out[k] = v
        return out

    @property
    def lower_headers(self) -> dict[str, str]:
        return {k.lower(): v for k, v in self.header_items}

    def multi_headers(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for k, v in self.header_items:
            out.setdefault(k, []).append(v)
        return out

    def query(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for k, v in urllib.parse.parse_qsl(self.raw_query, keep_blank_values=True):
            out.setdefault(k, []).append(v)
        return out


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def request_context_for(api: RestApi, route: Route, request: Request, request_id: str) -> dict[str, Any]:
    headers = request.lower_headers
    return request_context(account_id=ACCOUNT_ID, api_id=api.api_id, stage=api.stage, resource=route.template,
                           method=request.method, path=request.path, request_id=request_id,
                           source_ip=request.source_ip, host=headers.get("host", LOOPBACK),
                           user_agent=headers.get("user-agent"))
