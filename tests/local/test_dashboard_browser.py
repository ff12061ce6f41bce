"""The twin's live page in a real browser: headless Chromium (Debian's `chromium`) driven by Playwright.

One twin of the dev stack watching its own copy of `Pulumi.dev.yaml`; the test loads `dashboardUrl` once, sends
canary traffic and changes `canaryWeight` the way `pulumi config set` does, and asserts on the rendered DOM that the
weights and counts follow with no reload. A client that opens the event stream and never reads stays connected
throughout: requests and the weight change still go through. The screenshot is saved under the test's tmp dir.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from infra.config import PROJECT_DIR
from local.state import ROLLOUT_FILE, write_json
from services.common.catalogue import CATALOGUE
from tests.local.conftest import RunningTwin, start_twin

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
# This machine's closed network refuses Chromium's background connections; these keep it from trying.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LIVE_TIMEOUT_MS = 15_000
TOTAL_REQUESTS = ("[...document.querySelectorAll('tr[data-subset]')]"
                  ".reduce((n, r) => n + Number(r.dataset.requests), 0)")


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningTwin, Path]]:
    root = tmp_path_factory.mktemp("twin-dashboard")
    config_dir = root / "config"
    config_dir.mkdir()
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml"):
        shutil.copy(PROJECT_DIR / name, config_dir / name)
    running = start_twin(root / "state", extra=("--config-dir", str(config_dir)), watch=True)
    try:
        yield running, config_dir / "Pulumi.dev.yaml"
    finally:
        running.stop()


def _send(url: str, n: int) -> int:
    """n GETs of the canary's /version on one keep-alive session; how many answered 200."""
    ok = 0
    with requests.Session() as session:
        for _ in range(n):
            ok += session.get(url + "/version", timeout=15).status_code == 200
    return ok


def _set_weight(stack_file: Path, weight: int) -> None:
    text = stack_file.read_text()
    changed = re.sub(r"(canaryWeight:\s*)['\"]?\d+['\"]?", rf"\g<1>{weight}", text)
    assert changed != text, "canaryWeight not found in the stack file"
    stack_file.write_text(changed)


def _stalled_reader(url: str) -> socket.socket:
    """An event-stream client that never reads: its socket buffers fill and it just sits there."""
    parts = urllib.parse.urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=5)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(f"GET /events HTTP/1.1\r\nHost: {parts.netloc}\r\nAccept: text/event-stream\r\n\r\n".encode())
    return sock


def _row(page, subset: str) -> dict[str, str]:
    return page.eval_on_selector(f'tr[data-subset="{subset}"]',
                                 "r => ({weight: r.dataset.weight, requests: r.dataset.requests, "
                                 "share: r.dataset.share, text: r.innerText})")


def test_page_follows_traffic_and_weight_without_reload(twin: tuple[RunningTwin, Path], tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        # `.ci/run` installs it, so CI never skips; a developer's machine may not have it yet.
        assert not os.environ.get("CI"), "chromium is missing in CI (.ci/run installs it)"
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    running, stack_file = twin
    url, mesh = running.endpoints["dashboardUrl"], running.endpoints["meshUrl"]
    endpoints = json.loads((running.state_dir / "endpoints.json").read_text())
    assert endpoints["dashboardUrl"] == url
    assert "dashboardUrl" in running.output() and url in running.output()
    stalled = _stalled_reader(url)
    try:
        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                str(tmp_path / "profile"), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS,
                viewport={"width": 1280, "height": 900})
            try:
                page = context.pages[0] if context.pages else context.new_page()
                page.goto(url)
                page.wait_for_selector('tr[data-subset="v2"]', timeout=LIVE_TIMEOUT_MS)
                page.evaluate("window.__loadedOnce = true")  # a reload would drop it
                before = _row(page, "v2")
                assert before["weight"] == "10"
                total_before = page.evaluate(TOTAL_REQUESTS)

                assert _send(mesh, 200) == 200
                page.wait_for_function(f"n => ({TOTAL_REQUESTS}) >= n", arg=total_before + 200,
                                       timeout=LIVE_TIMEOUT_MS)
                at_10 = {s: _row(page, s) for s in ("v1", "v2")}
                assert int(at_10["v1"]["requests"]) > int(at_10["v2"]["requests"])  # 90/10
                assert "90 %" in at_10["v1"]["text"] and "10 %" in at_10["v2"]["text"]

                _set_weight(stack_file, 50)
                page.wait_for_function("() => document.querySelector('tr[data-subset=\"v2\"]').dataset.weight"
                                       " === '50'", timeout=60_000)
                assert _row(page, "v1")["weight"] == "50"

                v2_at_change = int(_row(page, "v2")["requests"])
                assert _send(mesh, 200) == 200
                # At 50 % v2 gets ~100 of the 200 (the 99.9% interval is far above 40).
                page.wait_for_function(
                    "n => Number(document.querySelector('tr[data-subset=\"v2\"]').dataset.requests) >= n",
                    arg=v2_at_change + 40, timeout=LIVE_TIMEOUT_MS)
                time.sleep(1.5)  # one more sample, so the chart shows the last burst
                assert page.evaluate("window.__loadedOnce") is True
                assert page.evaluate("performance.getEntriesByType('navigation').length") == 1

                # The serverless half from the same stream: a function's invocations count up as it runs.
                functions = page.eval_on_selector_all("tr[data-function]", "rs => rs.map(r => r.dataset.function)")
                listing = next(name for name in functions if name.endswith("todos-list"))
                row = f'tr[data-function="{listing}"]'
                invoked = int(page.get_attribute(row, "data-invocations") or 0)
                for _ in range(3):
                    assert requests.get(f"{running.api_url}/todos", timeout=30).status_code == 200
                page.wait_for_function(f"n => Number(document.querySelector('{row}').dataset.invocations) >= n",
                                       arg=invoked + 3, timeout=LIVE_TIMEOUT_MS)
                page.wait_for_function(f"() => Number(document.querySelector('{row}').dataset.p50) > 0",
                                       timeout=LIVE_TIMEOUT_MS)  # p50 from the runs' REPORT lines

                # A component the twin replaces: the function's worker dies, the next run fails and the Lambda
                # engine starts a fresh one; the page follows the live workers and the error with no reload.
                info = json.loads((running.state_dir / "twin.json").read_text())
                for pid in info["functions"][listing]["pids"]:
                    os.kill(pid, signal.SIGKILL)
                page.wait_for_function(f"() => document.querySelector('{row}').dataset.workers === '0'",
                                       timeout=LIVE_TIMEOUT_MS)
                answers = [requests.get(f"{running.api_url}/todos", timeout=30).status_code for _ in range(2)]
                assert answers[-1] == 200, answers
                page.wait_for_function(f"() => Number(document.querySelector('{row}').dataset.workers) >= 1 && "
                                       f"Number(document.querySelector('{row}').dataset.errors) >= 1",
                                       timeout=LIVE_TIMEOUT_MS)
                # The inventory's stock as its database holds it: this twin took no order, so the seed.
                stock = page.eval_on_selector_all("tr[data-product]",
                                                  "rs => Object.fromEntries(rs.map(r => [r.dataset.product, "
                                                  "Number(r.dataset.stock)]))")
                assert stock == {item.id: item.stock for item in CATALOGUE}
                assert page.eval_on_selector_all("tr[data-cluster]", "rs => rs.length") >= 1
                assert page.eval_on_selector_all("[data-queue]", "rs => rs.length") >= 1
                assert page.inner_text("#rollout-body").strip() == "no rollout running"

                # A rollout's file (what `python -m local rollout` is to write) appears: the section renders it.
                write_json(running.state_dir / ROLLOUT_FILE, {
                    "steps": [10, 50, 100], "weight": 50, "state": "running", "decisions": [
                        {"step": 10, "previousWeight": 0, "requests": 212, "errors": 0, "errorPercent": 0.0,
                         "p99Ms": 14.2, "windowSeconds": 30.0, "verdict": "healthy", "reason": "error rate 0.00 % "
                         "<= 1 %", "action": "promote", "applySeconds": 1.2}]})
                page.wait_for_selector('#rollout-body tr[data-step="10"]', timeout=LIVE_TIMEOUT_MS)
                assert "promote" in page.inner_text("#rollout-body")
                page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
            finally:
                context.close()
    finally:
        stalled.close()
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000


def test_page_draws_an_orders_waterfall(twin: tuple[RunningTwin, Path], tmp_path: Path) -> None:
    """After the first test (it asserts the seed stock): one order, and its trace appears as a waterfall whose rows
    are the hops of the seam, each indented under its parent."""
    from playwright.sync_api import sync_playwright

    from tests.local.test_shop_twin import _order, _user

    if not CHROMIUM.exists():
        assert not os.environ.get("CI"), "chromium is missing in CI (.ci/run installs it)"
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    running, _ = twin
    _, token = _user(running.api_url)
    placed = _order(running.api_url, token, "prod-0005", 1)
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["id"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(running.endpoints["dashboardUrl"])
            trace = f'.trace[data-order-id="{order_id}"]'
            # Complete once the query under the inventory arrived (the services flush every 500 ms).
            page.wait_for_function(
                f"() => [...document.querySelectorAll('{trace} .span-row[data-service=\"inventory\"]')].length >= 2",
                timeout=LIVE_TIMEOUT_MS)
            rows = page.eval_on_selector_all(f"{trace} .span-row", "rs => rs.map(r => ({span: r.dataset.span, "
                                             "parent: r.dataset.parent, service: r.dataset.service, "
                                             "depth: Number(r.dataset.depth)}))")
            by_span = {r["span"]: r for r in rows}
            assert rows[0]["service"] == "api-gateway" and rows[0]["depth"] == 0
            for row in rows[1:]:  # drawn under its parent, one level deeper
                assert by_span[row["parent"]]["depth"] == row["depth"] - 1, row
            services = [r["service"] for r in rows]
            assert "envoy-ingress" in services and any(s.endswith("orders-create") for s in services)
            page.screenshot(path=str(tmp_path / "waterfall.png"), full_page=True)
        finally:
            browser.close()
