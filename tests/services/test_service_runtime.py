"""What every service does besides its API: probes, request ids in JSON logs, OpenAPI, the grants check, shutdown."""

from __future__ import annotations

import re
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.postgres import ConnectionParams, PostgresServer
from services.common.dbroles import SERVICE_ROLES
from services.common.settings import ServiceSettings
from services.inventory.settings import Settings as InventorySettings
from services.notification.settings import Settings as NotificationSettings
from services.product.settings import Settings as ProductSettings
from tests.services.conftest import RunningService, run_service
from tests.support.postgres import ShopDatabase, bootstrapped_database, execute, run_bootstrap, server_root
from tests.support.servers import free_port

SERVICES = ("inventory", "product", "notification")
COMMON_ENV = {
    "HOST",
    "PORT",
    "DATABASE_HOST",
    "DATABASE_PORT",
    "DATABASE_NAME",
    "DATABASE_USER",
    "DATABASE_PASSWORD",
    "DATABASE_POOL_SIZE",
    "DATABASE_TIMEOUT_SECONDS",
    "LOG_LEVEL",
}


@pytest.fixture(scope="module")
def shop(postgres: PostgresServer) -> ShopDatabase:
    return bootstrapped_database(postgres, "runtime")


@pytest.fixture(scope="module")
def inventory(shop: ShopDatabase, log_dir: Path) -> Iterator[RunningService]:
    with run_service("inventory", shop.role("inventory"), log_dir) as svc:
        yield svc


def test_settings_read_exactly_the_documented_env_names() -> None:
    assert set(ServiceSettings.model_fields) == COMMON_ENV
    assert set(InventorySettings.model_fields) == COMMON_ENV | {"MAX_RESERVE_QUANTITY"}
    assert set(ProductSettings.model_fields) == COMMON_ENV
    assert set(NotificationSettings.model_fields) == COMMON_ENV


def test_settings_default_to_loopback_port_8080(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in COMMON_ENV:
        monkeypatch.delenv(name, raising=False)
    settings = InventorySettings()
    assert (settings.HOST, settings.PORT, settings.MAX_RESERVE_QUANTITY) == ("127.0.0.1", 8080, 100)
    monkeypatch.setenv("MAX_RESERVE_QUANTITY", "5")
    assert InventorySettings().MAX_RESERVE_QUANTITY == 5


def test_health_and_ready_answer_200_when_database_is_up(inventory: RunningService) -> None:
    with inventory.client() as client:
        assert client.get("/health").json() == {"status": "ok"}
        assert client.get("/ready").json() == {"status": "ready"}


def test_request_id_header_is_echoed_and_logged(inventory: RunningService) -> None:
    with inventory.client() as client:
        response = client.get("/api/inventory/prod-0001", headers={"x-request-id": "req-abc.123"})
    assert response.headers["x-request-id"] == "req-abc.123"
    line = inventory.wait_for_log(lambda entry: entry.get("requestId") == "req-abc.123")
    assert (line["path"], line["status"], line["method"]) == ("/api/inventory/prod-0001", 200, "GET")
    assert line["service"] == "inventory" and line["level"] == "INFO"


@pytest.mark.parametrize("sent", [None, "has spaces in it", "x" * 200])
def test_missing_or_unsafe_request_id_is_replaced_by_a_generated_one(
    inventory: RunningService, sent: str | None
) -> None:
    headers = {"x-request-id": sent} if sent else {}
    with inventory.client() as client:
        response = client.get("/api/inventory/ghost", headers=headers)
    generated = response.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    line = inventory.wait_for_log(lambda entry: entry.get("requestId") == generated)
    assert line["status"] == 404


def test_every_log_line_is_json(inventory: RunningService) -> None:
    logs = inventory.logs()  # raises if any line is not JSON
    assert logs and all({"timestamp", "level", "message", "service"} <= set(line) for line in logs)


@pytest.mark.parametrize(
    ("name", "paths"),
    [
        ("inventory", {"/api/inventory/{productId}", "/api/inventory/reserve", "/api/inventory/release"}),
        ("product", {"/api/products", "/api/products/{id}"}),
        ("notification", {"/api/notifications"}),
    ],
)
def test_openapi_document_lists_the_api(
    name: str, paths: set[str], shop: ShopDatabase, log_dir: Path
) -> None:
    with run_service(name, shop.role(name), log_dir, ready=False) as svc, svc.client() as client:
        document = client.get("/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert paths | {"/health", "/ready"} <= set(document["paths"])


def test_without_a_database_health_is_200_but_ready_and_routes_are_503(log_dir: Path) -> None:
    port = free_port()
    nowhere = ConnectionParams("127.0.0.1", port, "inventory", "postgres", "unused")
    with (
        run_service("inventory", nowhere, log_dir, ready=False, DATABASE_TIMEOUT_SECONDS="1") as svc,
        svc.client() as client,
    ):
        assert client.get("/health").status_code == 200
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["error"]["code"] == "NOT_READY"
        route = client.post("/api/inventory/reserve", json={"orderId": "o", "productId": "p", "quantity": 1})
        assert route.status_code == 503
        assert route.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
        assert route.headers["retry-after"] == "1"


def test_service_recovers_when_its_database_starts_later_and_reports_503_when_it_goes_away(log_dir: Path) -> None:
    port = free_port()
    root = server_root()
    server = PostgresServer(root, port=port, settings={"fsync": "off"})
    server.start()
    passwords = {service: f"{service}-password-for-the-test" for service in SERVICE_ROLES}
    run_bootstrap(server.create_database("inventory"), passwords, seed=True)
    server.stop()
    target = ShopDatabase(server.params("inventory"), passwords).role("inventory")
    with run_service("inventory", target, log_dir, ready=False, DATABASE_TIMEOUT_SECONDS="1") as svc:
        with svc.client() as client:
            assert client.get("/ready").status_code == 503
        server.start()
        try:
            svc.wait_ready()
            with svc.client() as client:
                assert client.get("/api/inventory/prod-0001").status_code == 200
        finally:
            server.stop()
        with svc.client() as client:
            assert client.get("/ready").status_code == 503
            assert client.get("/api/inventory/prod-0001").status_code == 503
    shutil.rmtree(root, ignore_errors=True)


def test_wrong_database_password_keeps_the_service_unready(shop: ShopDatabase, log_dir: Path) -> None:
    own = shop.role("inventory")
    wrong = ConnectionParams(own.host, own.port, own.dbname, own.user, "not-the-password")
    with run_service("inventory", wrong, log_dir, ready=False) as svc, svc.client() as client:
        assert client.get("/ready").status_code == 503
        svc.wait_for_log(lambda entry: entry.get("message") == "database not reachable yet, retrying")
        assert "not-the-password" not in svc.log_path.read_text()


def test_a_service_stays_unready_until_the_bootstrap_has_granted_its_role(
    postgres: PostgresServer, log_dir: Path
) -> None:
    shop = bootstrapped_database(postgres, "late_grants")
    execute(shop.master, "REVOKE SELECT ON products FROM {}".format(shop.role("product").user))
    with run_service("product", shop.role("product"), log_dir, ready=False) as svc, svc.client() as client:
        line = svc.wait_for_log(lambda entry: "grants not in place" in entry.get("message", ""))
        assert line["missing"] == "SELECT on products"
        assert client.get("/ready").status_code == 503
        run_bootstrap(shop.master, shop.passwords)
        svc.wait_ready()
        assert client.get("/api/products/prod-0001").status_code == 200


def test_sigterm_shuts_down_cleanly_and_closes_the_pool(shop: ShopDatabase, log_dir: Path) -> None:
    def connections() -> int:
        rows = execute(shop.master, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'notification' "
                                    "AND datname = %s", (shop.master.dbname,))
        return int(rows[0][0])

    with run_service("notification", shop.role("notification"), log_dir) as svc:
        with svc.client() as client:
            client.get("/api/notifications", params={"userId": "u"})
        assert connections() >= 1
        svc.proc.send_signal(signal.SIGTERM)
        # uvicorn finishes its shutdown, then re-raises the signal so the exit status says SIGTERM.
        assert svc.proc.wait(timeout=20) in (0, -signal.SIGTERM)
        messages = [line["message"] for line in svc.logs()]
    assert "Application shutdown complete." in messages
    assert connections() == 0


@pytest.mark.parametrize("name", SERVICES)
def test_dockerfile_runs_the_module_as_a_non_root_user_on_slim_python_312(name: str) -> None:
    text = (Path(__file__).resolve().parents[2] / "services" / name / "Dockerfile").read_text()
    assert "FROM python:3.12-slim" in text
    assert re.search(r"^USER 10001$", text, re.M)
    assert f'CMD ["python", "-m", "services.{name}"]' in text
    assert "services/requirements.txt" in text
