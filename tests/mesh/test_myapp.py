"""services/myapp: what the canary split is measured with."""

from __future__ import annotations

import itertools

import pytest
from fastapi.testclient import TestClient

from services.myapp.fault import FaultSchedule
from services.myapp.main import create_app
from services.myapp.settings import Settings


def client(**env: object) -> TestClient:
    return TestClient(create_app(Settings(**env)))  # type: ignore[arg-type]


def test_version_reports_the_configured_version() -> None:
    response = client(VERSION="2.0.0").get("/version")
    assert response.status_code == 200
    assert response.json() == {"version": "2.0.0"}


def test_health_and_ready_answer_200() -> None:
    app = client(VERSION="1.0.0")
    assert app.get("/health").json() == {"status": "ok"}
    assert app.get("/ready").json() == {"status": "ready", "version": "1.0.0"}


def test_no_failures_are_injected_by_default() -> None:
    app = client()
    assert {app.get("/version").status_code for _ in range(50)} == {200}


def test_fault_percent_100_fails_requests_with_the_error_envelope_but_not_probes() -> None:
    app = client(FAULT_PERCENT=100)
    response = app.get("/version")
    assert response.status_code == 500
    assert response.json() == {"error": {"code": "INJECTED_FAILURE", "message": "failure injected by FAULT_PERCENT"}}
    assert app.get("/health").status_code == 200
    assert app.get("/ready").status_code == 200


def test_fault_percent_30_fails_exactly_30_of_every_100_requests() -> None:
    app = client(FAULT_PERCENT=30)
    statuses = [app.get("/version").status_code for _ in range(300)]
    for start in range(0, 300, 100):
        assert statuses[start : start + 100].count(500) == 30, start
    assert set(statuses) == {200, 500}


def test_probes_do_not_consume_the_fault_schedule() -> None:
    app = client(FAULT_PERCENT=50)
    outcomes = []
    for _ in range(10):
        assert app.get("/health").status_code == 200
        outcomes.append(app.get("/version").status_code)
    assert outcomes == [200, 500] * 5  # every other request, probes in between or not


@pytest.mark.parametrize(("percent", "failed"), [(0, 0), (1, 1), (7, 7), (31, 31), (99, 99), (100, 100)])
def test_fault_schedule_fails_percent_of_each_hundred_spread_evenly(percent: int, failed: int) -> None:
    schedule = FaultSchedule(percent)
    fails = [schedule.next_fails() for _ in range(200)]
    assert sum(fails[:100]) == sum(fails[100:]) == failed
    if 0 < percent < 100:
        failed_at = [i for i, fail in enumerate(fails) if fail]
        gaps = [b - a for a, b in itertools.pairwise(failed_at)]
        assert max(gaps) - min(gaps) <= 1, gaps  # no bursts: failures as evenly spaced as integers allow


def test_settings_come_from_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9123")
    monkeypatch.setenv("VERSION", "1.0.0")
    settings = Settings()
    assert (settings.HOST, settings.PORT, settings.VERSION, settings.FAULT_PERCENT) == ("127.0.0.1", 9123, "1.0.0", 0)


@pytest.mark.parametrize("env", [{"FAULT_PERCENT": "101"}, {"FAULT_PERCENT": "-1"}, {"FAULT_PERCENT": "0.5"},
                                 {"PORT": "0"}])
def test_out_of_range_settings_are_rejected(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValueError):
        Settings()
