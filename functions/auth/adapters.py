"""The auth group's edges: the DynamoDB users table (hash key `username`, see `infra.tables.USERS`) and the JWT
signing key in Secrets Manager (fetched once per container; Powertools caches it for `max_age`).

Nothing AWS is imported at module level: Powertools' `parameters` utility imports boto3 (~100 ms), and only the
functions that read the secret need it, on their first call; botocore's `ClientError` is caught through
`aws.client_error()`.
"""

from __future__ import annotations

from typing import Any

from functions.auth.errors import UsernameTaken
from functions.auth.ports import UserRecord
from functions.common import aws

# Re-read the secret every few minutes so a rotated key reaches warm containers without a redeploy.
CACHE_SECONDS = 300


class DynamoUserRepository:
    """Users in DynamoDB; `add` is a conditional put, so two concurrent registrations cannot both win."""

    def __init__(self, *, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def add(self, user: UserRecord) -> None:
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "username": {"S": user.username},
                    "userId": {"S": user.user_id},
                    "passwordHash": {"S": user.password_hash},
                    "createdAt": {"S": user.created_at},
                },
                ConditionExpression="attribute_not_exists(username)",
            )
        except aws.client_error() as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise UsernameTaken(user.username) from None
            raise

    def get(self, username: str) -> UserRecord | None:
        found = self._client.get_item(
            TableName=self._table, Key={"username": {"S": username}}, ConsistentRead=True
        ).get("Item")
        if not found:
            return None
        return UserRecord(
            username=found["username"]["S"],
            user_id=found["userId"]["S"],
            password_hash=found["passwordHash"]["S"],
            created_at=found["createdAt"]["S"],
        )


def get_signing_key(secret_arn: str) -> str:
    """The SecretString of `secret_arn` (the raw HS256 key)."""
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_secret(secret_arn, max_age=CACHE_SECONDS)
    if not isinstance(value, str) or not value:
        raise RuntimeError("the JWT secret has no SecretString")
    return value
