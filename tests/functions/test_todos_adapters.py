"""DynamoDB adapter failure paths that moto cannot produce on demand: throttling becomes a retryable 503."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from functions.common.errors import ServiceUnavailable
from functions.todos.adapters import DynamoTodoRepository


@pytest.mark.parametrize("code", ["ProvisionedThroughputExceededException", "ThrottlingException"])
def test_throttled_table_raises_service_unavailable_with_retry_after(code: str) -> None:
    client = boto3.client("dynamodb", region_name="eu-west-1", endpoint_url="http://127.0.0.1:9")
    with Stubber(client) as stub:
        stub.add_client_error("get_item", service_error_code=code, http_status_code=400)
        with pytest.raises(ServiceUnavailable) as err:
            DynamoTodoRepository("todos", client=client).get("11111111-1111-4111-8111-111111111111")
    assert err.value.status == 503 and err.value.retry_after == 1


def test_other_client_errors_are_not_disguised() -> None:
    from botocore.exceptions import ClientError

    client = boto3.client("dynamodb", region_name="eu-west-1", endpoint_url="http://127.0.0.1:9")
    with Stubber(client) as stub:
        stub.add_client_error("scan", service_error_code="ResourceNotFoundException", http_status_code=400)
        with pytest.raises(ClientError):
            DynamoTodoRepository("missing-table", client=client).scan_page(10, None)
