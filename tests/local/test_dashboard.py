"""The live page's parts without a twin: counter history, REPORT tailing, the sampler's sections, the app's stream."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from starlette.testclient import TestClient

from local.dashboard import Dashboard, sections
from local.dashboard.app import create_app
from local.dashboard.history import CounterHistory, ReportTail, percentile
from local.dashboard.sampler import Sampler, TwinView
from local.facts import Facts
from local.processes import LogSink
from local.state import LOG_FILE, MESH_FILE, ROLLOUT_FILE, write_json


def test_counter_history_turns_cumulative_counts_into_increments() -> None:
    history = CounterHistory()
    history.add(100.0, {"v1": 10, "v2": 0})
    history.add(101.0, {"v1": 40, "v2": 5})
    history.add(103.0, {"v1": 40, "v2": 25})
    assert history.window(60, now=103.0) == {"v1": 30, "v2": 25}
    chart = history.rates(["v1", "v2"])
    assert chart["t"] == [101.0, 103.0]
    assert chart["series"] == {"v1": [30.0, 0.0], "v2": [5.0, 10.0]}


def test_counter_reset_counts_the_new_value_not_a_negative_rate() -> None:
    """Envoy restarted (or a cluster was re-created): its counters start again from 0."""
    history = CounterHistory()
    history.add(0.0, {"v1": 500})
    history.add(1.0, {"v1": 7})
    assert history.window(60, now=1.0) == {"v1": 7}


def test_counter_history_forgets_what_is_older_than_it_keeps() -> None:
    history = CounterHistory(keep_seconds=10)
    history.add(0.0, {"v1": 0})
    history.add(1.0, {"v1": 5})
    history.add(20.0, {"v1": 6})
    assert history.window(100, now=20.0) == {"v1": 1}


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([5.0, 1.0, 3.0], 50) == 3.0
    assert percentile([float(i) for i in range(1, 101)], 99) == 99.0


def test_report_tail_reads_only_this_runs_lines_and_waits_for_a_whole_line(tmp_path: Path) -> None:
    log = tmp_path / LOG_FILE
    log.write_text("[todos-list] REPORT RequestId: old\tDuration: 999.00 ms\tMemory Size: 128 MB\n")
    tail = ReportTail(log)
    with open(log, "a") as handle:
        handle.write("[todos-list] START RequestId: a Version: $LATEST\n"
                     "[todos-list] REPORT RequestId: a\tDuration: 12.50 ms\tMemory Size: 128 MB\t"
                     "Max Memory Used: 60 MB\n[todos-list] REPORT RequestId: b\tDuration: 3")
    tail.read()
    assert tail.quantiles("todos-list") == {"p50Ms": 12.5, "p99Ms": 12.5, "runs": 1}
    with open(log, "a") as handle:
        handle.write("0.00 ms\tMemory Size: 128 MB\n")
    tail.read()
    assert tail.quantiles("todos-list") == {"p50Ms": 12.5, "p99Ms": 30.0, "runs": 2}
    assert tail.quantiles("orders-create")["runs"] == 0


def test_report_tail_rereads_a_truncated_log(tmp_path: Path) -> None:
    log = tmp_path / LOG_FILE
    log.write_text("x" * 500 + "\n")
    tail = ReportTail(log)
    log.write_text("[f] REPORT RequestId: a\tDuration: 2.00 ms\n")
    tail.read()
    assert tail.quantiles("f")["runs"] == 1


def test_breakers_read_envoy_cluster_gauges(monkeypatch: pytest.MonkeyPatch) -> None:
    inventory = "outbound|80||inventory.shop.svc.cluster.local"
    canary = "outbound|80|v1|myapp-service.canary.svc.cluster.local"
    stats = {f"cluster.{inventory}.membership_total": 2, f"cluster.{inventory}.membership_healthy": 1,
             f"cluster.{inventory}.outlier_detection.ejections_active": 1,
             f"cluster.{inventory}.circuit_breakers.default.rq_pending_open": 1,
             f"cluster.{inventory}.circuit_breakers.default.cx_open": 0,
             f"cluster.{inventory}.upstream_rq_pending_overflow": 4,
             f"cluster.{canary}.membership_total": 1}
    monkeypatch.setattr(sections, "admin_stats", lambda url: stats)
    rows = sections.breakers("http://admin", skip=[canary])
    assert rows == [{"cluster": inventory, "host": "inventory.shop.svc.cluster.local", "subset": None, "port": "80",
                     "healthy": 1, "total": 2, "ejected": 1, "open": ["rq_pending_open"], "overflows": 4}]


def test_rollout_section_is_the_file_a_rollout_writes(tmp_path: Path) -> None:
    assert sections.rollout(tmp_path) is None
    write_json(tmp_path / ROLLOUT_FILE, {"steps": [10, 50, 100], "weight": 50, "state": "running",
                                         "decisions": [{"step": 10, "verdict": "healthy", "action": "promote"}]})
    assert sections.rollout(tmp_path)["decisions"][0]["action"] == "promote"


def _view(tmp_path: Path, statuses: Any) -> TwinView:
    return TwinView(state_dir=tmp_path, statuses=statuses, facts=Facts, graph=lambda: None)


def test_a_failing_reader_marks_its_section_and_the_others_stay_live(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Envoy's admin API gone (restarting): the canary and the breakers say so; functions still come."""
    write_json(tmp_path / MESH_FILE, {"adminUrl": "http://127.0.0.1:9", "listeners": {}, "canary": {
        "virtualService": "canary/myapp-vs", "host": "myapp", "subsets": [
            {"subset": "v1", "weight": 90, "cluster": "c1", "versions": ["1.0.0"]}]}})
    statuses = {"lambda": {"f": {"invocations": 3, "errors": 1, "timeouts": 0, "pids": [123456789]}}}
    sampler = Sampler(_view(tmp_path, lambda: statuses), LogSink(open("/dev/null", "w")))  # noqa: SIM115
    snapshot = sampler.sample()
    assert snapshot["canary"] is None and "canary" in snapshot["errors"]
    assert snapshot["breakers"] is None and "breakers" in snapshot["errors"]
    assert snapshot["functions"] == [{"name": "f", "invocations": 3, "errors": 1, "timeouts": 0, "workers": 0,
                                      "p50Ms": None, "p99Ms": None, "runs": 0}]
    assert snapshot["rollout"] is None and snapshot["images"] is None and snapshot["stock"] is None


def test_canary_share_and_success_are_over_the_recent_window(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    write_json(tmp_path / MESH_FILE, {"adminUrl": "http://admin", "listeners": {}, "canary": {
        "virtualService": "canary/myapp-vs", "host": "myapp", "subsets": []}})
    counts = iter([(100, 0, 0, 0), (190, 1, 10, 2)])

    def rows(state: Any) -> list[dict[str, Any]]:
        v1, e1, v2, e2 = next(counts)
        return [{"subset": "v1", "versions": ["1.0.0"], "weight": 90, "requests": v1, "errors": e1},
                {"subset": "v2", "versions": ["2.0.0"], "weight": 10, "requests": v2, "errors": e2}]

    monkeypatch.setattr("local.canary.per_version_stats", rows)
    monkeypatch.setattr(sections, "admin_stats", lambda url: {})
    sampler = Sampler(_view(tmp_path, lambda: {}), LogSink(open("/dev/null", "w")))  # noqa: SIM115
    sampler.sample()
    canary = sampler.sample()["canary"]
    v1, v2 = canary["subsets"]
    assert (v1["windowRequests"], v1["share"], v1["successRate"]) == (90, 90.0, 98.9)
    assert (v2["windowRequests"], v2["share"], v2["successRate"]) == (10, 10.0, 80.0)
    assert list(canary["chart"]["series"]) == ["v1", "v2"]


def test_app_serves_the_page_the_snapshot_and_a_stream_of_them() -> None:
    stopping = threading.Event()
    snapshot = {"seq": 7, "canary": None}
    app = create_app(lambda: (7, json.dumps(snapshot)), stopping)
    with TestClient(app) as client:
        page = client.get("/")
        assert page.status_code == 200 and 'src="/static/vendor/uPlot.iife.min.js"' in page.text
        assert client.get("/static/vendor/uPlot.iife.min.js").text.startswith("/*! uPlot v1.6.32")
        assert client.get("/api/snapshot").json() == snapshot
        with client.stream("GET", "/events") as stream:
            lines = []
            for line in stream.iter_lines():
                lines.append(line)
                if line.startswith("data:"):
                    stopping.set()  # ends the stream
                    break
        assert "event: snapshot" in lines and f"data: {json.dumps(snapshot)}" in lines


def test_a_slow_reader_delays_neither_the_start_nor_the_page(tmp_path: Path) -> None:
    """An engine whose status() hangs: the twin's `ready` does not wait for it, and the page still answers."""
    release = threading.Event()

    def slow() -> dict[str, Any]:
        release.wait(10)
        return {}

    started = time.monotonic()
    dashboard = Dashboard(_view(tmp_path, slow), LogSink(open("/dev/null", "w"))).start()  # noqa: SIM115
    try:
        assert time.monotonic() - started < 2.0
        assert dashboard.endpoints() == {"dashboardUrl": dashboard.url}
        assert requests.get(dashboard.url, timeout=2).status_code == 200
        assert requests.get(f"{dashboard.url}api/snapshot", timeout=2).json() == {}
    finally:
        release.set()
        dashboard.stop()
    assert dashboard.endpoints() == {}
