"""The same Istio specs on real Envoy in front of real myapp processes: split, header route, live
weight changes without a failed request, and outlier ejection of a failing upstream."""

from __future__ import annotations

import http.client
import json
import math
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx
import pytest

from mesh import canary, shop
from mesh.canary import CanarySettings
from mesh.envoy import cluster_name
from mesh.shop import CircuitBreakerSettings, ShopService, ShopSettings
from tests.mesh.conftest import Mesh

pytestmark = pytest.mark.slow

WORKERS = 4


def apply_mesh(
    mesh: Mesh,
    settings: CanarySettings,
    shop_settings: ShopSettings | None = None,
    shop_endpoints: dict[tuple[str, str | None], list[tuple[str, int]]] | None = None,
) -> None:
    """What the twin does on every change: the whole set of specs, both listeners, one apply."""
    shop_settings = shop_settings or ShopSettings()
    endpoints: dict[tuple[str, str | None], list[tuple[str, int]]] = {(settings.host, "v2"): [mesh.v2]}
    if settings.replicas_enabled("v1"):
        endpoints[(settings.host, "v1")] = [mesh.v1]
    endpoints.update(shop_endpoints or {})
    mesh.envoy.apply(
        [canary.virtual_service(settings), shop.virtual_service(shop_settings)],
        [canary.destination_rule(settings)] + [shop.destination_rule(shop_settings, s) for s in shop_settings.services],
        endpoints,
    )


def apply_canary(mesh: Mesh, settings: CanarySettings) -> None:
    apply_mesh(mesh, settings)


def fetch_versions(url: str, n: int, headers: dict[str, str] | None = None) -> Counter[str]:
    """``n`` GET /version over keep-alive connections on a few threads; non-200 answers count by status.

    ``http.client`` rather than httpx here: a third of the client CPU per request, and on two cores the
    client competes with Envoy and both apps.
    """
    target = urlsplit(url)
    counts: Counter[str] = Counter()
    lock = threading.Lock()

    def worker(share: int) -> None:
        local: Counter[str] = Counter()
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
        try:
            for _ in range(share):
                conn.request("GET", "/version", headers=headers or {})
                response = conn.getresponse()
                body = response.read()
                local[json.loads(body)["version"] if response.status == 200 else str(response.status)] += 1
        finally:
            conn.close()
        with lock:
            counts.update(local)

    shares = [n // WORKERS + (1 if i < n % WORKERS else 0) for i in range(WORKERS)]
    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(worker, shares))
    return counts


def binomial_interval(n: int, p: float, confidence: float = 0.999) -> tuple[int, int]:
    """Exact central interval [lo, hi] holding ``confidence`` of Binomial(n, p)'s mass."""
    if p in (0.0, 1.0):
        return (0, 0) if p == 0.0 else (n, n)
    tail = (1 - confidence) / 2
    log_pmf = [
        math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * math.log(p) + (n - k) * math.log(1 - p)
        for k in range(n + 1)
    ]
    cdf, lo = 0.0, 0
    for k in range(n + 1):
        cdf += math.exp(log_pmf[k])
        if cdf > tail:
            lo = k
            break
    cdf, hi = 0.0, n
    for k in range(n, -1, -1):
        cdf += math.exp(log_pmf[k])
        if cdf > tail:
            hi = k
            break
    return lo, hi


@pytest.mark.parametrize("weight", [10, 50, 100])
def test_canary_share_lies_in_the_binomial_interval_around_the_weight(live_mesh: Mesh, weight: int) -> None:
    apply_canary(live_mesh, CanarySettings(canary_weight=weight))
    n = 2000
    counts = fetch_versions(live_mesh.canary_url, n)
    assert set(counts) <= {"1.0.0", "2.0.0"}, counts
    assert sum(counts.values()) == n
    lo, hi = binomial_interval(n, weight / 100)
    assert lo <= counts["2.0.0"] <= hi, (counts, (lo, hi))


def test_weight_zero_sends_no_request_to_the_canary(live_mesh: Mesh) -> None:
    apply_canary(live_mesh, CanarySettings(canary_weight=0))
    v2_cluster = cluster_name(CanarySettings().host, "v2", 80)
    before = live_mesh.envoy.cluster_stats(v2_cluster).get("upstream_rq_total", 0)
    counts = fetch_versions(live_mesh.canary_url, 1500)
    assert counts == Counter({"1.0.0": 1500})
    assert live_mesh.envoy.cluster_stats(v2_cluster).get("upstream_rq_total", 0) == before


def test_header_route_always_reaches_the_canary_even_at_weight_zero(live_mesh: Mesh) -> None:
    apply_canary(live_mesh, CanarySettings(canary_weight=0))
    assert fetch_versions(live_mesh.canary_url, 300, {"x-canary": "always"}) == Counter({"2.0.0": 300})
    assert fetch_versions(live_mesh.canary_url, 60, {"x-canary": "sometimes"}) == Counter({"1.0.0": 60})


def test_retired_stable_version_gets_nothing_and_the_canary_everything(live_mesh: Mesh) -> None:
    apply_canary(live_mesh, CanarySettings(canary_weight=100, retire_stable=True))
    assert fetch_versions(live_mesh.canary_url, 300) == Counter({"2.0.0": 300})


def test_weight_change_under_a_steady_stream_fails_no_request(live_mesh: Mesh) -> None:
    apply_canary(live_mesh, CanarySettings(canary_weight=10))
    target = urlsplit(live_mesh.canary_url)
    stop = threading.Event()
    results: list[tuple[float, float, str]] = []  # (sent, answered, version)
    errors: list[str] = []
    lock = threading.Lock()

    def stream() -> None:
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
        while not stop.is_set():
            sent = time.monotonic()
            try:
                conn.request("GET", "/version")
                response = conn.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as exc:
                with lock:
                    errors.append(repr(exc))
                conn.close()
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
                continue
            with lock:
                if response.status == 200:
                    results.append((sent, time.monotonic(), json.loads(body)["version"]))
                else:
                    errors.append(f"{response.status} {body!r}")
        conn.close()

    def wait_for(count: int, since: float) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with lock:
                if sum(1 for sent, _, _ in results if sent > since) >= count:
                    return
            time.sleep(0.05)

    threads = [threading.Thread(target=stream) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        wait_for(600, 0.0)
        change_started = time.monotonic()
        apply_canary(live_mesh, CanarySettings(canary_weight=50))
        change_done = time.monotonic()
        wait_for(600, change_done + 0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert errors == []
    # Routed under the old weights: answered before the change began; under the new: sent after it landed.
    before = Counter(v for _, answered, v in results if answered < change_started)
    after = Counter(v for sent, _, v in results if sent > change_done + 0.05)
    lo10, hi10 = binomial_interval(before.total(), 0.10)
    lo50, hi50 = binomial_interval(after.total(), 0.50)
    assert lo10 <= before["2.0.0"] <= hi10, (before, (lo10, hi10))
    assert lo50 <= after["2.0.0"] <= hi50, (after, (lo50, hi50))


def test_failing_upstream_is_ejected_by_outlier_detection(live_mesh: Mesh) -> None:
    breaker = CircuitBreakerSettings(consecutive_5xx_errors=3, interval="1s", base_ejection_time="30s")
    settings = ShopSettings(services=(ShopService(name="inventory", prefix="/api/inventory", circuit_breaker=breaker),))
    inventory = settings.service("inventory")
    host = settings.host(inventory)
    cluster = cluster_name(host, None, 80)
    apply_mesh(live_mesh, CanarySettings(), settings, {(host, None): [live_mesh.healthy, live_mesh.failing]})
    assert live_mesh.envoy.cluster_stats(cluster).get("outlier_detection.ejections_enforced_total", 0) == 0
    statuses: Counter[int] = Counter()
    with httpx.Client(base_url=live_mesh.shop_url, timeout=10) as client:
        # Writes are not retried on 5xx, so the caller sees the failing host's 500s until it is ejected.
        for _ in range(40):
            statuses[client.post("/api/inventory/reserve", json={}).status_code] += 1
        stats = live_mesh.envoy.cluster_stats(cluster)
        assert stats["outlier_detection.ejections_enforced_total"] >= 1, stats
        assert stats["outlier_detection.ejections_active"] == 1
        assert stats["outlier_detection.ejections_enforced_consecutive_5xx"] >= 1
        # With the failing host out of the pool, every request reaches the healthy one (404: no such route).
        after = Counter(client.post("/api/inventory/reserve", json={}).status_code for _ in range(50))
    assert statuses[500] >= 3, statuses  # three consecutive 500s eject (a request in flight may add one)
    assert after == Counter({404: 50})


def test_shop_prefixes_reach_their_services_through_the_ingress_listener(live_mesh: Mesh) -> None:
    settings = ShopSettings()
    endpoints = {(settings.host(svc), None): [live_mesh.healthy] for svc in settings.services}
    apply_mesh(live_mesh, CanarySettings(), settings, endpoints)
    paths = {"inventory": "/api/inventory/p-1", "product": "/api/products", "notification": "/api/notifications"}
    with httpx.Client(base_url=live_mesh.shop_url, timeout=10) as client:
        for name, path in paths.items():
            cluster = cluster_name(settings.host(settings.service(name)), None, 80)
            before = live_mesh.envoy.cluster_stats(cluster).get("upstream_rq_total", 0)
            assert client.get(path).status_code == 404  # myapp answers; the route reached it
            assert live_mesh.envoy.cluster_stats(cluster)["upstream_rq_total"] == before + 1
        unrouted = client.get("/api/orders")
    assert unrouted.status_code == 404
    assert unrouted.headers.get("server") == "envoy"  # Envoy's own "no route", not an upstream answer


def test_envoy_reports_requests_and_latency_quantiles_per_version(live_mesh: Mesh) -> None:
    settings = CanarySettings(canary_weight=50)
    apply_canary(live_mesh, settings)
    clusters = {v: cluster_name(settings.host, v, 80) for v in ("v1", "v2")}
    before = {v: live_mesh.envoy.cluster_stats(c).get("upstream_rq_2xx", 0) for v, c in clusters.items()}
    counts = fetch_versions(live_mesh.canary_url, 400)
    after = {v: live_mesh.envoy.cluster_stats(c)["upstream_rq_2xx"] for v, c in clusters.items()}
    assert after["v1"] - before["v1"] == counts["1.0.0"]
    assert after["v2"] - before["v2"] == counts["2.0.0"]
    histograms = live_mesh.envoy.histograms()
    for cluster in clusters.values():
        quantiles = histograms[f"cluster.{cluster}.upstream_rq_time"]
        assert quantiles[50.0] is not None and 0 <= quantiles[50.0] <= quantiles[99.0]
