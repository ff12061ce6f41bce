"""Issue 10's attack on the twin: a caller inside the network POSTs to the ingress's write paths directly.

The twin's ingress listener enforces the graph's own RequestAuthentication and AuthorizationPolicy (translated to
`jwt_authn` + `rbac`), so every attempt without the stack's service token is refused, and stock does not move. The
one caller that may write is the order function, with the token it mints from the key in (moto's) Secrets Manager;
the test signs with that same stored key to play the legitimate caller and the attacker who holds a near miss.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec

from tests.local.conftest import RunningTwin
from tests.local.test_shop_twin import _order, _stack_key, _stock, _token, _user

pytestmark = pytest.mark.slow

# One product per test: the module's tests may run at once on different xdist workers against the shared twin.
PRODUCT = "prod-0003"
REPLAY_PRODUCT = "prod-0004"
ORDER_PRODUCT = "prod-0007"
#: Envoy's jwt_authn accepts a token this long past its `exp` (`clock_skew_seconds`, which istiod leaves at its
#: default): an expired token is tested beyond it.
CLOCK_SKEW = 60


def _reserve(twin: RunningTwin, token: str | None, path: str = "/api/inventory/reserve",
             order_id: str | None = None, product: str = PRODUCT) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.post(f"{twin.endpoints['ingressUrl']}{path}", headers=headers, timeout=30,
                         json={"orderId": order_id or f"attack-{uuid.uuid4().hex}", "productId": product,
                               "quantity": 1})


@pytest.fixture(scope="module")
def stack_key(dev_twin: RunningTwin) -> Any:
    return _stack_key(dev_twin)


ATTACKS: list[tuple[str, Callable[[RunningTwin, Any], str | None], int]] = [
    ("no credential", lambda twin, key: None, 403),
    ("forged signature", lambda twin, key: _token(ec.generate_private_key(ec.SECP256R1())), 401),
    ("wrong audience", lambda twin, key: _token(key, aud="shop-admin"), 403),  # jwt_authn's audience check
    ("expired", lambda twin, key: _token(key, ttl=1, issued=int(time.time()) - CLOCK_SKEW - 30), 401),
    ("a user's access token", lambda twin, key: _user(twin.api_url)[1], 401),
]


@pytest.mark.parametrize(("case", "make", "status"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_writes_without_the_service_token_are_refused_and_stock_is_unchanged(
        dev_twin: RunningTwin, stack_key: Any, case: str, make: Callable[[RunningTwin, Any], str | None],
        status: int) -> None:
    token = make(dev_twin, stack_key)
    before = _stock(dev_twin, PRODUCT)
    for path in ("/api/inventory/reserve", "/api/inventory/release", "/api/notifications"):
        response = _reserve(dev_twin, token, path)
        assert response.status_code == status, (case, path, response.text)
    assert _stock(dev_twin, PRODUCT) == before


def test_the_stacks_token_reserves_and_a_replay_after_expiry_is_refused(dev_twin: RunningTwin,
                                                                         stack_key: Any) -> None:
    token = _token(stack_key, ttl=2)
    order_id = f"replay-{uuid.uuid4().hex}"
    before = _stock(dev_twin, REPLAY_PRODUCT)
    first = _reserve(dev_twin, token, order_id=order_id, product=REPLAY_PRODUCT)
    assert first.status_code == 200, first.text
    assert _stock(dev_twin, REPLAY_PRODUCT) == before - 1
    time.sleep(2 + CLOCK_SKEW + 1)
    replay = _reserve(dev_twin, token, order_id=f"replay-{uuid.uuid4().hex}",
                      product=REPLAY_PRODUCT)
    assert replay.status_code == 401, replay.text
    assert _stock(dev_twin, REPLAY_PRODUCT) == before - 1


def test_public_reads_stay_public_and_notifications_are_not(dev_twin: RunningTwin) -> None:
    ingress = dev_twin.endpoints["ingressUrl"]
    assert requests.get(f"{ingress}/api/products", timeout=30).status_code == 200
    assert requests.get(f"{ingress}/api/inventory/{PRODUCT}", timeout=30).status_code == 200
    assert requests.get(f"{ingress}/api/notifications", params={"userId": "u"}, timeout=30).status_code == 403


def test_the_order_flow_still_works_through_the_ingress(dev_twin: RunningTwin) -> None:
    _, token = _user(dev_twin.api_url)
    before = _stock(dev_twin, ORDER_PRODUCT)
    made = _order(dev_twin.api_url, token, ORDER_PRODUCT, 1)
    assert made.status_code == 201, made.text
    assert _stock(dev_twin, ORDER_PRODUCT) == before - 1
