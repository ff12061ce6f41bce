"""services/myapp: what the canary split is measured with."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

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


def test_fail_rate_one_fails_requests_with_the_error_envelope_but_not_probes() -> None:
    app = client(FAIL_RATE=1.0)
    response = app.get("/version")
    assert response.status_code == 500
    assert response.json() == {"error": {"code": "INJECTED_FAILURE", "message": "failure injected by FAIL_RATE"}}
    assert app.get("/health").status_code == 200
    assert app.get("/ready").status_code == 200


def test_settings_come_from_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9123")
    monkeypatch.setenv("VERSION", "1.0.0")
    settings = Settings()
    assert (settings.HOST, settings.PORT, settings.VERSION, settings.FAIL_RATE) == ("127.0.0.1", 9123, "1.0.0", 0.0)


@pytest.mark.parametrize("env", [{"FAIL_RATE": "1.5"}, {"PORT": "0"}])
def test_out_of_range_settings_are_rejected(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValueError):
        Settings()
