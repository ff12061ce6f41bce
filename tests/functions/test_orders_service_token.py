"""The order function's mesh credential: claims, caching until near expiry, and what create_order sends."""

from __future__ import annotations

import os
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import boto3
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from functions.orders import handlers
from functions.orders.service_token import ServiceTokenMinter, read_private_key
from functions.orders.settings import ServiceClaims
from infra.tables import IDEMPOTENCY, ORDERS
from tests.functions import shop_support as shop
from tests.support.dynamo import create_table

CLAIMS = ServiceClaims(issuer="iss-1", subject="orders", audience="shop-mesh", ttl_seconds=300,
                       refresh_margin_seconds=60)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def key_pair() -> tuple[str, str]:
    return shop.service_key_pem()


def test_the_token_carries_the_service_identity_and_a_short_life(key_pair: tuple[str, str]) -> None:
    private, public = key_pair
    clock = Clock(1_000_000.0)
    token = ServiceTokenMinter(CLAIMS, lambda: private, clock).token()
    claims = jwt.decode(token, public, algorithms=["ES256"], audience="shop-mesh", issuer="iss-1",
                        options={"verify_exp": False})
    assert claims["sub"] == "orders" and claims["iat"] == 1_000_000 and claims["exp"] == 1_000_300
    assert jwt.get_unverified_header(token)["alg"] == "ES256"


def test_one_token_is_reused_until_a_minute_before_it_expires(key_pair: tuple[str, str]) -> None:
    loads: list[int] = []

    def load() -> str:
        loads.append(1)
        return key_pair[0]

    clock = Clock(1_000_000.0)
    minter = ServiceTokenMinter(CLAIMS, load, clock)
    first = minter.token()
    clock.now += 239
    assert minter.token() == first and len(loads) == 1
    clock.now += 1  # 60 s before expiry: renewed
    renewed = minter.token()
    assert renewed != first and len(loads) == 2
    assert jwt.decode(renewed, key_pair[1], algorithms=["ES256"], audience="shop-mesh",
                      options={"verify_exp": False})["exp"] == 1_000_540


def test_a_margin_as_long_as_the_lifetime_is_refused() -> None:
    with pytest.raises(ValueError, match="refresh margin"):
        ServiceClaims(issuer="i", subject="s", audience="a", ttl_seconds=60, refresh_margin_seconds=60)


def test_a_secret_without_a_pem_key_fails_loudly(aws_endpoint: str) -> None:
    shop.reset_function_caches()
    arn = boto3.client("secretsmanager").create_secret(Name="not-a-key", SecretString="hunter2")["ARN"]
    with pytest.raises(RuntimeError, match="no PEM private key"):
        read_private_key(arn)


@pytest.fixture
def shop_env(aws_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
    ddb = boto3.client("dynamodb")
    create_table(ddb, ORDERS, "orders-token-test")
    create_table(ddb, IDEMPOTENCY, "idem-token-test")
    monkeypatch.setenv("ORDERS_TABLE_NAME", "orders-token-test")
    monkeypatch.setenv("IDEMPOTENCY_TABLE_NAME", "idem-token-test")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "orders")
    public = shop.service_token_env(monkeypatch)
    shop.reset_function_caches()
    with shop.fake_services(shop.FakeServices(stock={"widget": 5})) as services:
        monkeypatch.setenv("K8S_API_URL", services.url)
        yield SimpleNamespace(services=services, public=public)
    shop.reset_function_caches()


def test_create_order_sends_the_service_token_on_every_mesh_call(shop_env: Any) -> None:
    event = shop.order_event("POST", "/orders", user_id="alice", body={"productId": "widget", "quantity": 1},
                             idempotency_key="k-1")
    response = handlers.create_order(event, shop.context("create_order"))
    assert response["statusCode"] == 201, response
    sent = shop_env.services.authorizations
    assert [path for path, _ in shop_env.services.calls] == ["/api/inventory/reserve", "/api/notifications"]
    assert len(sent) == 2 and len(set(sent)) == 1  # one token, reused
    scheme, token = sent[0].split(" ")
    assert scheme == "Bearer"
    claims = jwt.decode(token, shop_env.public, algorithms=["ES256"], audience=shop.SERVICE_CLAIMS[
        "SERVICE_TOKEN_AUDIENCE"], issuer=shop.SERVICE_CLAIMS["SERVICE_TOKEN_ISSUER"])
    assert claims["sub"] == "orders" and claims["exp"] - claims["iat"] == 300


def test_the_public_half_of_the_stored_key_verifies_it(shop_env: Any) -> None:
    private = read_private_key(os.environ["SERVICE_TOKEN_SECRET_ARN"])
    loaded = serialization.load_pem_private_key(private.encode(), password=None)
    public = loaded.public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    assert public == shop_env.public
