"""Helpers for the auth and orders function tests: events, cache resets, a fake inventory/notification server,
and the real inventory + notification services on real PostgreSQL.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from local.http_server import LoopbackHTTPServer
from tests.support.events import EVENTS_DIR, api_event, lambda_context
from tests.support.servers import LOOPBACK, free_port, stop_process, wait_for_http

REPO = Path(__file__).resolve().parents[2]
# 64 bytes: above HS256's 32-byte minimum (and HS512's 64, used to forge a wrong-algorithm token).
SIGNING_KEY = "test-signing-key-0123456789abcdefghijklmnopqrstuvwxyz-0123456789"
METHOD_ARN = "arn:aws:execute-api:eu-west-1:123456789012:abc123defg/prod/GET/orders"
#: The service identity the order function presents to the mesh (the stack's values come from mesh.service_auth).
SERVICE_CLAIMS = {"SERVICE_TOKEN_ISSUER": "serverless-mesh-orders", "SERVICE_TOKEN_SUBJECT": "orders",
                  "SERVICE_TOKEN_AUDIENCE": "shop-mesh"}
SERVICE_KEY_SECRET = "test-service-token-key"



#: A threading HTTP server whose listen backlog holds a burst (socketserver's default of 5 makes the kernel reset
#: connections when 60 clients connect at once) and that stays quiet when a client hangs up.
LoopbackServer = LoopbackHTTPServer

def service_key_pem() -> tuple[str, str]:
    """A fresh P-256 key pair as (private PEM, public PEM)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


def service_token_env(monkeypatch: Any) -> str:
    """The service-token key as a secret in the moto server the test points at, and the env naming it. Returns
    the public PEM (to verify what the function sent)."""
    import boto3

    private, public = service_key_pem()
    sm = boto3.client("secretsmanager")
    name = f"{SERVICE_KEY_SECRET}-{time.monotonic_ns()}"
    arn = sm.create_secret(Name=name, SecretString=private)["ARN"]
    monkeypatch.setenv("SERVICE_TOKEN_SECRET_ARN", arn)
    for key, value in SERVICE_CLAIMS.items():
        monkeypatch.setenv(key, value)
    return public


def reset_function_caches() -> None:
    """Forget every per-container cache of the auth and orders functions (env, clients, sessions, secrets)."""
    from aws_lambda_powertools.utilities.parameters import base as parameters_base

    from functions.auth import handlers as auth_handlers
    from functions.auth import passwords
    from functions.auth import settings as auth_settings
    from functions.common import aws
    from functions.orders import handlers as order_handlers
    from functions.orders import service_token
    from functions.orders import settings as order_settings

    aws.reset()
    parameters_base.DEFAULT_PROVIDERS.clear()
    parameters_base.clear_caches()
    auth_settings.get_env.cache_clear()
    auth_settings.get_authorizer_env.cache_clear()
    auth_handlers.users.cache_clear()
    passwords.dummy_hash.cache_clear()
    order_settings.get_env.cache_clear()
    order_settings.get_read_env.cache_clear()
    order_handlers.orders_repository.cache_clear()
    order_handlers.idempotent_place_order.cache_clear()
    order_handlers.http_session.cache_clear()
    service_token.service_auth.cache_clear()


def context(function_name: str) -> Any:
    """A fresh fake Lambda context (typed `Any`: handlers are annotated with Powertools' `LambdaContext`)."""
    return lambda_context(function_name)


# ---- events -------------------------------------------------------------------------------------------------


def authorizer_event(headers: Mapping[str, str] | None = None, method_arn: str = METHOD_ARN) -> dict[str, Any]:
    """A REQUEST authorizer event (REST API) with extra `headers`."""
    event: dict[str, Any] = json.loads((EVENTS_DIR / "apigw_authorizer_request.json").read_text())
    for name, value in (headers or {}).items():
        event["headers"][name] = value
        event["multiValueHeaders"][name] = [value]
    event["methodArn"] = method_arn
    return event


def order_event(
    method: str,
    path: str,
    *,
    user_id: str | None,
    body: Any = None,
    idempotency_key: str | None = None,
    resource: str | None = None,
    path_parameters: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A proxy event for an orders route as API Gateway sends it after our authorizer allowed `user_id`."""
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key is not None else {}
    event = api_event(
        method, path, resource=resource, path_parameters=path_parameters, query=query, body=body, headers=headers
    )
    if user_id is not None:
        event["requestContext"]["authorizer"] = {
            "principalId": user_id,
            "userId": user_id,
            "username": f"name-of-{user_id}",
            "integrationLatency": 3,
        }
    return event


# ---- a fake inventory + notification server ----------------------------------------------------------------


@dataclass
class FakeServices:
    """Inventory and notification on one loopback port, mimicking the services' HTTP contract and recording calls.

    `reserve_fault`/`notify_fault` force an answer (status, body or None) instead of the real behaviour, e.g.
    `(503, None)` for the mesh's "no healthy upstream"; `notify_delay`/`reserve_delay` hold those answers.
    """

    stock: dict[str, int]
    cap: int = 100
    reserve_fault: tuple[int, Any] | None = None
    release_fault: tuple[int, Any] | None = None
    notify_fault: tuple[int, Any] | None = None
    notify_delay: float = 0.0
    reserve_delay: float = 0.0
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)
    """The `Authorization` header of every POST, in order."""
    traceparents: list[str] = field(default_factory=list)
    """The `traceparent` header of every POST that carried one, in order."""
    reservations: dict[str, dict[str, Any]] = field(default_factory=dict)
    notifications: dict[str, dict[str, Any]] = field(default_factory=dict)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def paths(self) -> list[str]:
        with self._lock:
            return [path for path, _ in self.calls]

    def bodies(self, path: str) -> list[dict[str, Any]]:
        with self._lock:
            return [body for p, body in self.calls if p == path]

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        with self._lock:
            self.calls.append((path, copy.deepcopy(body)))
            if path == "/api/inventory/reserve":
                return self.reserve_fault or self._reserve(body)
            if path == "/api/inventory/release":
                return self.release_fault or self._release(body)
            if path == "/api/notifications":
                if self.notify_fault:
                    return self.notify_fault
                created = body["orderId"] not in self.notifications
                self.notifications.setdefault(body["orderId"], body)
                return (201 if created else 200), self.notifications[body["orderId"]]
        return 404, {"error": {"code": "NOT_FOUND", "message": path}}

    def _reserve(self, body: dict[str, Any]) -> tuple[int, Any]:
        order_id, product, quantity = body["orderId"], body["productId"], body["quantity"]
        if not isinstance(quantity, int) or not 1 <= quantity <= self.cap:
            return 422, _error("UNPROCESSABLE", "quantity out of range")
        existing = self.reservations.get(order_id)
        if existing is not None:
            if existing["status"] == "released":
                return 409, _error("RESERVATION_RELEASED", "use a new orderId")
            return 200, existing["answer"]
        if product not in self.stock:
            return 404, _error("PRODUCT_NOT_FOUND", f"product {product} does not exist")
        if self.stock[product] < quantity:
            return 409, _error("INSUFFICIENT_STOCK", f"not enough stock of {product}")
        self.stock[product] -= quantity
        answer = {"orderId": order_id, "productId": product, "quantity": quantity, "stock": self.stock[product]}
        self.reservations[order_id] = {"status": "reserved", "answer": answer}
        return 200, answer

    def _release(self, body: dict[str, Any]) -> tuple[int, Any]:
        existing = self.reservations.get(body["orderId"])
        if existing is None:
            return 200, {"orderId": body["orderId"], "status": "not_found"}
        if existing["status"] == "reserved":
            existing["status"] = "released"
            self.stock[existing["answer"]["productId"]] += existing["answer"]["quantity"]
        return 200, {"orderId": body["orderId"], "status": "released"}


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


@contextmanager
def fake_services(services: FakeServices) -> Iterator[FakeServices]:
    """Serve `services` on 127.0.0.1 and a free port for the duration of the block."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            services.authorizations.append(self.headers.get("Authorization") or "")
            if self.headers.get("traceparent"):
                services.traceparents.append(self.headers["traceparent"])
            status, payload = services.answer(self.path, body)
            if self.path == "/api/notifications" and services.notify_delay:
                time.sleep(services.notify_delay)
            if self.path == "/api/inventory/reserve" and services.reserve_delay:
                time.sleep(services.reserve_delay)
            raw = b"" if payload is None else json.dumps(payload).encode()
            try:
                self.send_response(status)
                if payload is not None:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (its read timeout); nothing to answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = LoopbackServer((LOOPBACK, free_port()), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    services.url = f"http://{LOOPBACK}:{server.server_address[1]}"
    try:
        yield services
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def closed_port_url() -> str:
    """A loopback URL nothing listens on: connections are refused, as when inventory is down."""
    return f"http://{LOOPBACK}:{free_port()}"


# ---- the real services on real PostgreSQL ------------------------------------------------------------------


@contextmanager
def running_service(module: str, env: Mapping[str, str], log_path: Path) -> Iterator[str]:
    """`python -m services.<module>` on 127.0.0.1 and a free port until the block ends; yields its base URL."""
    port = free_port()
    full_env = {**os.environ, **env, "HOST": LOOPBACK, "PORT": str(port), "LOG_LEVEL": "WARNING"}
    full_env.pop("AWS_ENDPOINT_URL", None)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", f"services.{module}"],
            cwd=REPO,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"http://{LOOPBACK}:{port}"
        try:
            wait_for_http(f"{url}/ready", timeout=60, proc=proc)
            _wait_ready(f"{url}/ready", proc)
            yield url
        finally:
            stop_process(proc)


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: service exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} never became ready")


@contextmanager
def path_router(routes: Mapping[str, str]) -> Iterator[str]:
    """A minimal ingress on 127.0.0.1: forwards a request to the upstream of its longest matching path prefix.

    Stands in for the Istio ingress (one base URL, `/api/inventory` and `/api/notifications` to different
    services), so the functions reach the real services exactly through `K8S_API_URL`.
    """
    import http.client
    from urllib.parse import urlsplit

    ordered = sorted(routes.items(), key=lambda item: len(item[0]), reverse=True)

    class Proxy(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            upstream = next((url for prefix, url in ordered if self.path.startswith(prefix)), None)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            if upstream is None:
                status, headers, raw = 404, {"Content-Type": "application/json"}, b'{"error":{"code":"NO_ROUTE"}}'
            else:
                target = urlsplit(upstream)
                conn = http.client.HTTPConnection(target.hostname or LOOPBACK, target.port, timeout=30)
                try:
                    fwd = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                    conn.request(self.command, self.path, body=body, headers=fwd)
                    resp = conn.getresponse()
                    status, raw = resp.status, resp.read()
                    headers = {k: v for k, v in resp.getheaders() if k.lower() in ("content-type", "retry-after")}
                except OSError:
                    # What the mesh answers when no upstream is healthy: 503, no JSON envelope.
                    status, headers, raw = 503, {"Content-Type": "text/plain"}, b"no healthy upstream"
                finally:
                    conn.close()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = _forward
        do_POST = _forward

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = LoopbackServer((LOOPBACK, free_port()), Proxy)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
