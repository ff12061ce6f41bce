"""The shop on the twin: auth and order Lambdas behind the local gateway, inventory/product/notification as processes
on pgserver's PostgreSQL, reached through Envoy's ingress (the graph's `K8S_API_URL` translated to it).

Everything goes over HTTP as a user would with curl; only the oversell test arranges its stock with SQL, as the
stack's database user (the credentials the Deployments get from the graph's Secret).
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import boto3
import jwt
import psycopg
import pytest
import requests

from infra.database import DB_NAME, DB_USER
from mesh.service_auth import ServiceIdentity
from tests.local.conftest import RunningTwin

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery"
IDENTITY = ServiceIdentity()


def _user(api: str) -> tuple[str, str]:
    """A fresh user: (username, bearer token)."""
    username = f"buyer-{uuid.uuid4().hex[:10]}"
    r = requests.post(f"{api}/auth/register", json={"username": username, "password": PASSWORD}, timeout=30)
    assert r.status_code == 201, r.text
    r = requests.post(f"{api}/auth/token", json={"username": username, "password": PASSWORD}, timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer"
    return username, body["access_token"]


def _order(api: str, token: str, product: str, quantity: int, key: str | None = None,
           session: requests.Session | None = None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": key or uuid.uuid4().hex}
    return (session or requests).post(f"{api}/orders", json={"productId": product, "quantity": quantity},
                                      headers=headers, timeout=60)


def _stock(twin: RunningTwin, product: str) -> int:
    r = requests.get(f"{twin.endpoints['ingressUrl']}/api/inventory/{product}", timeout=30)
    assert r.status_code == 200, r.text
    return int(r.json()["stock"])


def _stack_key(twin: RunningTwin) -> Any:
    """The service-token private key the stack stored (the twin's moto holds the graph's secret versions)."""
    sm = boto3.client("secretsmanager", endpoint_url=twin.aws_url, region_name="eu-west-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    for page in sm.get_paginator("list_secrets").paginate():
        for secret in page["SecretList"]:
            value = sm.get_secret_value(SecretId=secret["ARN"]).get("SecretString", "")
            if "BEGIN PRIVATE KEY" in value:
                return value
    raise AssertionError("no service token key among the twin's secrets")


def _token(key: Any, *, ttl: int = 300, issued: int | None = None, **claims: Any) -> str:
    now = int(time.time()) if issued is None else issued
    body = {"iss": IDENTITY.issuer, "sub": IDENTITY.subject, "aud": IDENTITY.audience, "iat": now, "exp": now + ttl,
            **claims}
    return jwt.encode(body, key, algorithm="ES256")


def _db(twin: RunningTwin) -> psycopg.Connection:
    """The shop database as the stack's user (password: the twin's stand-in for the `dbPassword` secret)."""
    url = urlsplit(twin.endpoints["postgresUrl"])
    password = json.loads((twin.state_dir / "secrets.json").read_text())["dbPassword"]
    return psycopg.connect(host=url.hostname, port=url.port, dbname=DB_NAME, user=DB_USER, password=password,
                           autocommit=True)


def test_user_registers_orders_idempotently_lists_and_finds_the_notification(dev_twin: RunningTwin) -> None:
    api = dev_twin.api_url
    _, token = _user(api)
    before = _stock(dev_twin, "prod-0002")

    first = _order(api, token, "prod-0002", 2, key="order-key-1")
    assert first.status_code == 201, first.text
    order = first.json()
    assert order["productId"] == "prod-0002" and order["quantity"] == 2 and order["status"] == "confirmed"
    replay = _order(api, token, "prod-0002", 2, key="order-key-1")
    assert replay.status_code == 201 and replay.json()["id"] == order["id"]
    assert _stock(dev_twin, "prod-0002") == before - 2  # one reservation for the two requests

    listed = requests.get(f"{api}/orders", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert listed.status_code == 200
    assert [o["id"] for o in listed.json()["items"]] == [order["id"]]
    got = requests.get(f"{api}/orders/{order['id']}", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert got.status_code == 200 and got.json() == listed.json()["items"][0]

    # The notification service stored it: read through the ingress, as the order function wrote it.
    # Notifications are not public at the ingress: read them as the stack's own caller.
    service = {"Authorization": f"Bearer {_token(_stack_key(dev_twin))}"}
    notes = requests.get(f"{dev_twin.endpoints['ingressUrl']}/api/notifications",
                         params={"userId": order["userId"]}, headers=service, timeout=30)
    assert notes.status_code == 200
    items = notes.json()["items"]
    assert [n["orderId"] for n in items] == [order["id"]]
    assert order["id"] in items[0]["message"]


def test_orders_without_a_valid_token_are_refused(dev_twin: RunningTwin) -> None:
    api = dev_twin.api_url
    assert requests.post(f"{api}/orders", json={"productId": "prod-0001", "quantity": 1},
                         headers={"Idempotency-Key": "no-token"}, timeout=30).status_code == 401
    assert requests.get(f"{api}/orders", timeout=30).status_code == 401
    _, token = _user(api)
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"
    r = requests.get(f"{api}/orders", headers={"Authorization": f"Bearer {forged}"}, timeout=30)
    assert r.status_code in (401, 403)


def test_another_users_order_and_an_unknown_product_are_404(dev_twin: RunningTwin) -> None:
    api = dev_twin.api_url
    _, alice = _user(api)
    _, bob = _user(api)
    made = _order(api, alice, "prod-0005", 1)
    assert made.status_code == 201, made.text
    r = requests.get(f"{api}/orders/{made.json()['id']}", headers={"Authorization": f"Bearer {bob}"}, timeout=30)
    assert r.status_code == 404
    assert r.json()["error"]["code"].endswith("NOT_FOUND")
    unknown = _order(api, alice, "prod-9999", 1)
    assert unknown.status_code == 404, unknown.text


def test_concurrent_orders_for_the_last_units_never_oversell(dev_twin: RunningTwin) -> None:
    """200 orders of 1 unit for a stock of 50 from 64 concurrent clients: exactly 50 confirmed, stock 0.

    The twin runs at most `--max-workers` 4 invocations of a function at once, so reserves race 4 at a time
    through Envoy; 200-way races on the reserve statement itself are tests/services'.
    """
    api, product, stock, buyers, clients = dev_twin.api_url, "prod-0006", 50, 200, 64
    with _db(dev_twin) as conn:
        conn.execute("UPDATE inventory SET stock = %s WHERE product_id = %s", (stock, product))
    _, token = _user(api)

    def buy(i: int) -> int:
        with requests.Session() as session:
            return _order(api, token, product, 1, key=f"race-{i}-{uuid.uuid4().hex[:6]}", session=session).status_code

    with ThreadPoolExecutor(max_workers=clients) as pool:
        codes = Counter(pool.map(buy, range(buyers)))

    assert codes == Counter({201: stock, 409: buyers - stock}), codes
    assert _stock(dev_twin, product) == 0
    with _db(dev_twin) as conn:
        reserved = conn.execute("SELECT count(*), min(stock_after) FROM reservations "
                                "WHERE product_id = %s AND status = 'reserved'", (product,)).fetchone()
    assert reserved == (stock, 0)
    listed = requests.get(f"{api}/orders", params={"limit": 100}, headers={"Authorization": f"Bearer {token}"},
                          timeout=30).json()["items"]
    assert len([o for o in listed if o["productId"] == product]) == stock


def test_the_ingress_carries_the_inventory_circuit_breaker(dev_twin: RunningTwin) -> None:
    with urllib.request.urlopen(f"{dev_twin.endpoints['envoyAdminUrl']}/clusters", timeout=10) as response:
        clusters = response.read().decode()
    inventory = [line for line in clusters.splitlines() if line.startswith("outbound|80||inventory.shop.")]
    assert any(line.endswith("max_connections::100") for line in inventory), inventory[:10]
    assert any(line.endswith("max_pending_requests::50") for line in inventory), inventory[:10]
