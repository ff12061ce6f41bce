"""`python -m local canary`: the running twin's canary from Envoy's admin API, and the check of its split.

`per_version_stats` reads requests, errors and p50/p99 per subset; `verify` sends N requests to `meshUrl/version`
and checks the canary's share against its weight with a 99.9% binomial interval. Both read `<state>/mesh.json`,
which the mesh engine writes; this module imports none of the twin's engines (the command starts fast).
"""

from __future__ import annotations

import json
import math
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from local.envoy import admin_quantiles, admin_stats
from local.state import MESH_FILE

CANARY_LISTENER = "canary"


def read_state(state_dir: Path) -> dict[str, Any] | None:
    path = state_dir / MESH_FILE
    return json.loads(path.read_text()) if path.exists() else None


def per_version_stats(state: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Requests, errors (5xx answers and connection failures) and p50/p99 upstream time per canary subset."""
    canary = state.get("canary")
    if not canary:
        return []
    stats = admin_stats(state["adminUrl"])
    quantiles = admin_quantiles(state["adminUrl"])
    rows = []
    for subset in canary["subsets"]:
        prefix = f"cluster.{subset['cluster']}."
        times = quantiles.get(prefix + "upstream_rq_time", {})
        rows.append({
            "subset": subset["subset"], "versions": subset["versions"], "weight": subset["weight"],
            "requests": int(stats.get(prefix + "upstream_rq_total", 0)),
            "errors": int(stats.get(prefix + "upstream_rq_5xx", 0)) + int(stats.get(prefix + "upstream_cx_connect_fail",
                                                                                    0)),
            "p50Ms": times.get(50.0), "p99Ms": times.get(99.0),
        })
    return rows


def format_stats(rows: Sequence[Mapping[str, Any]]) -> str:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    lines = [f"{'subset':<8} {'version':<10} {'weight':>6} {'requests':>9} {'errors':>7} {'p50 ms':>7} {'p99 ms':>7}"]
    for row in rows:
        lines.append(f"{row['subset']:<8} {','.join(row['versions']) or '-':<10} {row['weight']:>6} "
                     f"{row['requests']:>9} {row['errors']:>7} {ms(row['p50Ms']):>7} {ms(row['p99Ms']):>7}")
    return "\n".join(lines)


def _log_pmf(k: int, n: int, p: float) -> float:
    return (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
            + k * math.log(p) + (n - k) * math.log1p(-p))


def binomial_interval(n: int, p: float, confidence: float = 0.999) -> tuple[int, int]:
    """The central acceptance interval [lo, hi] of Binomial(n, p): each tail outside it holds <= (1-confidence)/2."""
    if p <= 0.0:
        return 0, 0
    if p >= 1.0:
        return n, n
    tail = (1.0 - confidence) / 2
    pmf = [math.exp(_log_pmf(k, n, p)) for k in range(n + 1)]
    lo, acc = 0, 0.0
    while lo < n and acc + pmf[lo] <= tail:
        acc += pmf[lo]
        lo += 1
    hi, acc = n, 0.0
    while hi > 0 and acc + pmf[hi] <= tail:
        acc += pmf[hi]
        hi -= 1
    return lo, hi


@dataclass(frozen=True)
class Verdict:
    counts: dict[str, int]
    """Response body `version` (or `HTTP <status>` / the error) -> count, like `sort | uniq -c`."""
    failures: int
    canary_subset: str
    canary_requests: int
    weight: int
    interval: tuple[int, int]

    @property
    def consistent(self) -> bool:
        lo, hi = self.interval
        return self.failures == 0 and lo <= self.canary_requests <= hi


def verify(state: Mapping[str, Any], requests_total: int, *, concurrency: int = 4) -> Verdict:
    """Send `requests_total` GETs to meshUrl/version and check the canary's share against its weight."""
    canary = state.get("canary")
    if not canary:
        raise RuntimeError("the twin's mesh has no weighted VirtualService (no canary to verify)")
    url = state["listeners"][CANARY_LISTENER] + "/version"
    local = threading.local()

    def one(_: int) -> str:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        try:
            response = session.get(url, timeout=15)
        except requests.RequestException as exc:
            return f"error {type(exc).__name__}"
        if response.status_code != 200:
            return f"HTTP {response.status_code}"
        return str(response.json().get("version"))

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        answers = Counter(pool.map(one, range(requests_total)))
    subsets = canary["subsets"]
    canary_subset = next((s for s in subsets if s["subset"] == canary.get("canarySubset")), subsets[-1])
    canary_versions = set(canary_subset["versions"])
    known = {v for s in subsets for v in s["versions"]}
    failures = sum(n for answer, n in answers.items() if answer not in known)
    hits = sum(n for answer, n in answers.items() if answer in canary_versions)
    weight = int(canary_subset["weight"])
    return Verdict(counts=dict(sorted(answers.items())), failures=failures, canary_subset=canary_subset["subset"],
                   canary_requests=hits, weight=weight,
                   interval=binomial_interval(requests_total, weight / 100))


def format_verdict(verdict: Verdict, requests_total: int) -> str:
    lines = [f"{count:>7} {answer}" for answer, count in verdict.counts.items()]
    lo, hi = verdict.interval
    share = verdict.canary_requests / requests_total * 100 if requests_total else 0.0
    lines.append(f"{verdict.canary_subset}: {verdict.canary_requests}/{requests_total} = {share:.1f}% for weight "
                 f"{verdict.weight}; 99.9% binomial interval [{lo}, {hi}] requests; failed requests "
                 f"{verdict.failures} -> {'consistent' if verdict.consistent else 'NOT consistent'}")
    return "\n".join(lines)
