"""The shop's circuit breaker and retries as behaviour on real Envoy, not as configuration.

The DestinationRule and VirtualService come from the `mesh.shop` builders and reach Envoy through the project's
translation (`EnvoyProcess.apply` -> `mesh.envoy.translate`), in front of a backend written here so the test
controls how it fails: slow (every request holds its connection) or flaky (every other request is a 503).
"""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

import pytest

from local.envoy import EnvoyProcess
from local.http_server import LoopbackHTTPServer
from mesh import shop
from mesh.envoy import ListenerSpec, cluster_name
from mesh.shop import CircuitBreakerSettings, ShopService, ShopSettings
from tests.support.servers import LOOPBACK, free_port

pytestmark = [pytest.mark.slow]

SLOW_SECONDS = 1.0
INVENTORY = "/api/inventory"


@dataclass
class Backend:
    """What the test's upstream saw: requests by method and status, and the most it served at once."""

    respond: Callable[[Backend, str], int]
    lock: threading.Lock = field(default_factory=threading.Lock)
    served: Counter[tuple[str, int]] = field(default_factory=Counter)
    gets: int = 0
    in_flight: int = 0
    max_in_flight: int = 0

    def handle(self, method: str) -> int:
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.gets += method == "GET"
        try:
            status = self.respond(self, method)
        finally:
            with self.lock:
                self.in_flight -= 1
                self.served[(method, status)] += 1
        return status


def slow(backend: Backend, method: str) -> int:
    time.sleep(SLOW_SECONDS)
    return 200


def every_other_get_fails(backend: Backend, method: str) -> int:
    """The 1st, 3rd, 5th... GET is a 503 (as a replica restarting would answer); writes always fail."""
    if method != "GET":
        return 503
    with backend.lock:
        return 503 if backend.gets % 2 == 1 else 200


@contextmanager
def serving(respond: Callable[[Backend, str], int]) -> Iterator[tuple[Backend, tuple[str, int]]]:
    backend = Backend(respond)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            status = backend.handle(self.command)
            body = b'{"ok": true}' if status == 200 else b'{"error": "unavailable"}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: object) -> None:
            pass  # quiet: the test reads the Backend's counters instead

    server = LoopbackHTTPServer((LOOPBACK, 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield backend, (LOOPBACK, server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def envoy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EnvoyProcess]:
    listener = ListenerSpec(name="shop", port=free_port(), gateway=ShopSettings().ingress.ref,
                            virtual_services=("shop-vs",))
    with EnvoyProcess(tmp_path_factory.mktemp("envoy-resilience"), [listener]) as proc:
        yield proc


def apply_inventory(envoy: EnvoyProcess, breaker: CircuitBreakerSettings, upstream: tuple[str, int]) -> str:
    """The shop's specs for inventory alone (its DestinationRule carries `breaker`); the Envoy cluster's name."""
    settings = ShopSettings(services=(ShopService(name="inventory", prefix=INVENTORY, circuit_breaker=breaker),))
    inventory = settings.service("inventory")
    host = settings.host(inventory)
    envoy.apply([shop.virtual_service(settings)], [shop.destination_rule(settings, inventory)],
                {(host, None): [upstream]})
    return cluster_name(host, None, inventory.port)


def request(url: str, method: str, path: str) -> tuple[int, dict[str, str]]:
    """One request on its own connection: (status, lower-cased headers)."""
    target = urlsplit(url)
    conn = http.client.HTTPConnection(target.hostname or LOOPBACK, target.port, timeout=30)
    try:
        conn.request(method, path, body=b"{}" if method == "POST" else None,
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()


def test_a_pool_of_one_connection_sheds_concurrent_requests_with_503_and_counts_the_overflow(
        envoy: EnvoyProcess) -> None:
    breaker = CircuitBreakerSettings(max_connections=1, http1_max_pending_requests=1, max_requests_per_connection=1)
    clients = 10
    with serving(slow) as (backend, upstream):
        cluster = apply_inventory(envoy, breaker, upstream)
        before = envoy.cluster_stats(cluster).get("upstream_rq_pending_overflow", 0)
        barrier = threading.Barrier(clients)

        def one(_: int) -> tuple[int, dict[str, str]]:
            barrier.wait()
            return request(envoy.url("shop"), "GET", f"{INVENTORY}/prod-0001")

        with ThreadPoolExecutor(clients) as pool:
            answers = list(pool.map(one, range(clients)))
        stats = envoy.cluster_stats(cluster)
    statuses = Counter(status for status, _ in answers)
    shed = [headers for status, headers in answers if status == 503]
    overflow = stats.get("upstream_rq_pending_overflow", 0) - before
    print(f"{clients} concurrent: {dict(statuses)}, upstream_rq_pending_overflow +{overflow}, "
          f"at most {backend.max_in_flight} in flight upstream")
    # One request on the one connection, one waiting for it; the other concurrent ones are refused at once.
    assert statuses[200] >= 1 and statuses[503] >= clients - 4, statuses
    assert set(statuses) == {200, 503}, statuses
    assert all(h.get("x-envoy-overloaded") == "true" for h in shed), shed  # Envoy's own refusal, not the app's
    assert overflow == len(shed), stats  # each refusal is one overflow (Envoy does not retry an overflow)
    # Envoy's documented bound on connections (so on requests in flight, one per connection here): the limit plus
    # one per endpoint per connection pool, a pool per worker thread, because a selected host always gets one.
    assert backend.max_in_flight <= breaker.max_connections + 1 * envoy.concurrency < clients, backend
    assert backend.served[("GET", 200)] == statuses[200]  # a refused request never reached the upstream


def test_a_backend_failing_every_other_get_is_hidden_by_the_read_retries(envoy: EnvoyProcess) -> None:
    reads = 40
    with serving(every_other_get_fails) as (backend, upstream):
        cluster = apply_inventory(envoy, CircuitBreakerSettings(), upstream)
        before = envoy.cluster_stats(cluster).get("upstream_rq_retry", 0)
        statuses = Counter(request(envoy.url("shop"), "GET", f"{INVENTORY}/prod-0001")[0] for _ in range(reads))
        retried = envoy.cluster_stats(cluster).get("upstream_rq_retry", 0) - before
        # Writes are retried only when the request never reached the app, so a 503 on a write is the caller's.
        writes = Counter(request(envoy.url("shop"), "POST", f"{INVENTORY}/reserve")[0] for _ in range(5))
    print(f"{reads} reads: {dict(statuses)}, upstream_rq_retry +{retried}, upstream saw {dict(backend.served)}; "
          f"writes: {dict(writes)}")
    assert statuses == Counter({200: reads}), statuses
    assert backend.served[("GET", 503)] == reads  # each read failed once upstream...
    assert retried == reads, f"upstream_rq_retry went up by {retried}"  # ...and was retried once by Envoy
    assert writes == Counter({503: 5}) and backend.served[("POST", 503)] == 5
