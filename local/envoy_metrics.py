"""The twin's metric source: the canary subset's cluster in the twin's real Envoy, read from its admin API.

Envoy's counters and histograms are cumulative since it started, so a window is the difference of two reads:
the source takes its baseline when it is made (:meth:`mesh.rollout.Applier.metrics` is called right after a
weight is applied) and diffs against it at :meth:`EnvoySource.sample`. The p99 comes from Envoy's detailed
histogram buckets (``histogram_buckets=detailed``, finer than Istio's Prometheus buckets), diffed the same way.

Errors are what the twin's ``python -m local canary`` counts (:func:`local.mesh.per_version_stats`): 5xx answers
plus connections that failed, both what a caller of v2 sees as a server failure.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from local.envoy import admin_get
from mesh.analysis import Bucket, Sample, bucket_delta, bucket_quantile

REQUESTS = "upstream_rq_total"
ERRORS = ("upstream_rq_5xx", "upstream_cx_connect_fail")
DURATION = "upstream_rq_time"
COMPLETED = "upstream_rq_completed"


@dataclass(frozen=True)
class ClusterReading:
    """One read of a cluster's cumulative stats."""

    at: float
    counters: dict[str, int]
    durations: tuple[Bucket, ...]


def read_cluster(admin_url: str, cluster: str, now: Callable[[], float] = time.monotonic,
                 settle_seconds: float = 0.1) -> ClusterReading:
    """Counters and duration buckets of ``cluster`` (admin requests filtered to that cluster).

    Counters are live, but an admin read shows histograms as of the previous merge: the read itself triggers
    the merge (``stats_flush_on_admin``), which lands a few ms later. Measured: 300 requests done, the first
    read's histogram holds 0 samples, the next one 300. So the counters of the first read are kept and the
    buckets are re-read until they hold at least that read's completed requests, or ``settle_seconds`` pass:
    a weight change that replaces the cluster (new endpoints) restarts its histogram but not its counters, and
    then the totals never catch up; by then the merge has long landed (it takes milliseconds).
    """
    prefix = f"cluster.{cluster}."
    query = "/stats?" + urllib.parse.urlencode({"format": "json", "histogram_buckets": "detailed",
                                                 "filter": "^" + re.escape(prefix)})
    first = parse_reading(json.loads(admin_get(admin_url, query)), prefix, now())
    wanted = first.counters.get(COMPLETED, 0)
    durations, deadline = first.durations, time.monotonic() + settle_seconds
    while sum(count for _, _, count in durations) < wanted and time.monotonic() < deadline:
        time.sleep(0.01)
        durations = parse_reading(json.loads(admin_get(admin_url, query)), prefix, now()).durations
    return ClusterReading(at=first.at, counters=first.counters, durations=durations)


def parse_reading(body: Mapping[str, Any], prefix: str, at: float) -> ClusterReading:
    counters: dict[str, int] = {}
    durations: tuple[Bucket, ...] = ()
    for item in body.get("stats", []):
        if "histograms" in item:  # one entry holds every histogram; "totals" are cumulative since start
            for detail in item["histograms"].get("details", []):
                if detail.get("name") == prefix + DURATION:
                    durations = tuple((float(b["lower_bound"]), float(b["width"]), int(b["count"]))
                                      for b in detail.get("totals", []))
        elif str(item.get("name", "")).startswith(prefix) and isinstance(item.get("value"), int):
            counters[item["name"][len(prefix):]] = item["value"]
    return ClusterReading(at=at, counters=counters, durations=durations)


def window_sample(before: ClusterReading, after: ClusterReading) -> Sample:
    """What the cluster did between two reads."""
    def grew(name: str) -> int:
        return after.counters.get(name, 0) - before.counters.get(name, 0)

    return Sample(requests=grew(REQUESTS), errors=sum(grew(name) for name in ERRORS),
                  p99_ms=bucket_quantile(bucket_delta(before.durations, after.durations), 0.99),
                  window_seconds=after.at - before.at)


class EnvoySource:
    """:class:`mesh.rollout.MetricSource` over one Envoy cluster (the canary subset's), from the moment it is made."""

    def __init__(self, admin_url: str, cluster: str, *, now: Callable[[], float] = time.monotonic) -> None:
        self.admin_url = admin_url
        self.cluster = cluster
        self.now = now
        self.baseline = read_cluster(admin_url, cluster, now)

    def sample(self, window_seconds: float) -> Sample:
        """Since the baseline (the walk has waited ``window_seconds`` since making the source); the sample's
        ``window_seconds`` is the time actually measured."""
        return window_sample(self.baseline, read_cluster(self.admin_url, self.cluster, self.now))
