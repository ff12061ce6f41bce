"""Product over HTTP against real PostgreSQL: the seeded catalogue, keyset pages, 404s."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from local.postgres import ConnectionParams, PostgresServer
from services.common.catalogue import CATALOGUE
from tests.services.conftest import RunningService, run_service
from tests.support.postgres import ShopDatabase, bootstrapped_database, execute, run_bootstrap


@pytest.fixture(scope="module")
def shop(postgres: PostgresServer) -> ShopDatabase:
    return bootstrapped_database(postgres, "product")


@pytest.fixture(scope="module")
def db(shop: ShopDatabase) -> ConnectionParams:
    """The master's params: the test arranges and inspects rows with them (the service has its own role)."""
    return shop.master


@pytest.fixture(scope="module")
def service(shop: ShopDatabase, log_dir: Path) -> Iterator[RunningService]:
    with run_service("product", shop.role("product"), log_dir) as svc:
        yield svc


@pytest.fixture
def client(service: RunningService) -> Iterator[httpx.Client]:
    with service.client() as c:
        yield c


def test_list_returns_the_seeded_catalogue_with_decimal_string_prices(client: httpx.Client) -> None:
    response = client.get("/api/products", params={"limit": 100})
    assert response.status_code == 200
    body = response.json()
    assert body["nextCursor"] is None
    assert body["items"] == [
        {"id": item.id, "name": item.name, "price": f"{item.price:.2f}", "currency": item.currency}
        for item in sorted(CATALOGUE, key=lambda i: i.id)
    ]
    assert {"id": "prod-0007", "name": "Travel mug", "price": "19.99", "currency": "EUR"} in body["items"]


def test_pages_follow_next_cursor_without_gaps_or_repeats(client: httpx.Client) -> None:
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        body = client.get("/api/products", params=params).json()
        assert len(body["items"]) <= 3
        seen += [item["id"] for item in body["items"]]
        pages += 1
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert seen == sorted(item.id for item in CATALOGUE)
    assert pages == -(-len(CATALOGUE) // 3)


def test_default_page_size_is_20(client: httpx.Client, db: ConnectionParams) -> None:
    execute(
        db,
        "INSERT INTO products (id, name, price, currency) "
        "SELECT 'zz-' || lpad(g::text, 3, '0'), 'Extra ' || g, 1.00, 'EUR' FROM generate_series(1, 20) AS g",
    )
    try:
        body = client.get("/api/products").json()
        assert len(body["items"]) == 20
        assert body["nextCursor"] is not None
    finally:
        execute(db, "DELETE FROM products WHERE id LIKE 'zz-%'")


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 101}, {"limit": "ten"}, {"cursor": "%%%"}, {"cursor": "MQ"}]
)
def test_bad_limit_or_cursor_returns_422(client: httpx.Client, params: dict[str, str | int]) -> None:
    response = client.get("/api/products", params=params)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "UNPROCESSABLE"


def test_get_one_product(client: httpx.Client) -> None:
    response = client.get("/api/products/prod-0003")
    assert response.status_code == 200
    assert response.json() == {"id": "prod-0003", "name": "Burr grinder", "price": "129.99", "currency": "EUR"}


def test_get_unknown_product_returns_404(client: httpx.Client) -> None:
    response = client.get("/api/products/prod-9999")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "PRODUCT_NOT_FOUND"


def test_the_bootstrap_seeds_stock_for_exactly_the_catalogue_ids(
    shop: ShopDatabase, log_dir: Path, client: httpx.Client
) -> None:
    with run_service("inventory", shop.role("inventory"), log_dir) as inventory, inventory.client() as inv:
        product_ids = [item["id"] for item in client.get("/api/products", params={"limit": 100}).json()["items"]]
        stocks = {pid: inv.get(f"/api/inventory/{pid}").json()["stock"] for pid in product_ids}
    assert stocks == {item.id: item.stock for item in CATALOGUE}


def test_a_rerun_bootstrap_and_a_restart_keep_data_and_do_not_reseed_over_changes(
    shop: ShopDatabase, db: ConnectionParams, log_dir: Path, service: RunningService
) -> None:
    execute(db, "UPDATE products SET name = 'Renamed' WHERE id = 'prod-0001'")
    try:
        run_bootstrap(db, shop.passwords)
        with run_service("product", shop.role("product"), log_dir) as second, second.client() as c:
            assert c.get("/api/products/prod-0001").json()["name"] == "Renamed"
            assert len(c.get("/api/products", params={"limit": 100}).json()["items"]) == len(CATALOGUE)
    finally:
        execute(db, "UPDATE products SET name = 'Espresso cup' WHERE id = 'prod-0001'")
