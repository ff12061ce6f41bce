"""`ordersReservedConcurrency`: the order-creating function's reserved concurrency, only on that function."""

from __future__ import annotations

import pytest

from infra.config import ConfigError, parse_stack_config, stack_config_values
from sim.capture import Graph
from tests.infra.test_shop import FUNCTION, SHOP_FUNCTIONS, SHOP_FUNCTIONS_PREFIX, shop_graph


def _reserved(graph: Graph, fn: str) -> object:
    return graph.one(FUNCTION, f"{SHOP_FUNCTIONS_PREFIX}{fn}-function").inputs["reservedConcurrentExecutions"]


def test_unreserved_by_default_as_the_provider_defaults() -> None:
    graph = shop_graph()
    for name in SHOP_FUNCTIONS:
        assert _reserved(graph, name) == -1, name


def test_the_reservation_lands_on_orders_create_only() -> None:
    graph = shop_graph(ordersReservedConcurrency=5)
    assert _reserved(graph, "orders-create") == 5
    assert all(_reserved(graph, n) == -1 for n in SHOP_FUNCTIONS if n != "orders-create")


@pytest.mark.parametrize("value", [-2, 1001])
def test_a_reservation_outside_what_lambda_accepts_fails_naming_the_key(value: int) -> None:
    with pytest.raises(ConfigError) as err:
        parse_stack_config(stack_config_values("dev", {"ordersReservedConcurrency": value}).project_raw())
    assert str(err.value) == (f'serverless-mesh:ordersReservedConcurrency must be an integer from -1 to 1000, '
                              f'got "{value}"')
