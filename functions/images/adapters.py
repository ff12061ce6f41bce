"""S3 and DynamoDB adapters for the image logic: the only code here that talks to AWS.

Only errors that mean "the object is not the version the event announced" are translated (to `ObjectChanged`), and
"a newer record exists" (to a False save). Every other error, throttling and 5xx included, propagates so that
Lambda retries the invocation (the handler's work is idempotent). botocore's `ClientError` is caught through
`client_error()`, so importing this module does not import botocore.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from functions.common.aws import client, client_error, resource
from functions.images.errors import ObjectChanged
from functions.images.ports import ObjectInfo, StoredRecord

if TYPE_CHECKING:
    from botocore.exceptions import ClientError

# GetObject/HeadObject answer these when the object was replaced (IfMatch failed) or deleted since the event.
_GONE_OR_REPLACED = frozenset({"PreconditionFailed", "NoSuchKey", "404", "412"})


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class S3ObjectStore:
    """Objects of one bucket. Uses s3:GetObject (HEAD and GET) on original/* and s3:PutObject on derivatives."""

    def __init__(self, bucket: str) -> None:
        self.bucket = bucket

    def head(self, key: str) -> ObjectInfo:
        try:
            response = client("s3").head_object(Bucket=self.bucket, Key=key)
        except client_error() as exc:
            if _code(exc) in _GONE_OR_REPLACED:
                raise ObjectChanged(key) from exc
            raise
        return ObjectInfo(size=int(response["ContentLength"]), etag=str(response["ETag"]).strip('"'))

    def get(self, key: str, *, etag: str) -> bytes:
        try:
            response = client("s3").get_object(Bucket=self.bucket, Key=key, IfMatch=f'"{etag}"')
        except client_error() as exc:
            if _code(exc) in _GONE_OR_REPLACED:
                raise ObjectChanged(key) from exc
            raise
        body = response["Body"]
        try:
            return bytes(body.read())
        finally:
            body.close()

    def put_jpeg(self, key: str, data: bytes) -> None:
        client("s3").put_object(Bucket=self.bucket, Key=key, Body=data, ContentType="image/jpeg")


class DynamoMetadataRepository:
    """The metadata table (hash key `id` = original key). Uses dynamodb:GetItem and dynamodb:PutItem."""

    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def _table(self) -> Any:
        return resource("dynamodb").Table(self.table_name)

    def get(self, key: str) -> StoredRecord | None:
        response = self._table().get_item(
            Key={"id": key},
            ConsistentRead=True,
            ProjectionExpression="#s, etag, #st",
            ExpressionAttributeNames={"#s": "sequencer", "#st": "status"},
        )
        item = response.get("Item")
        if not item:
            return None
        return StoredRecord(
            sequencer=str(item.get("sequencer", "")), etag=str(item.get("etag", "")), status=str(item.get("status"))
        )

    def save(self, item: dict[str, Any]) -> bool:
        try:
            self._table().put_item(
                Item=item,
                # Equal sequencers are the same event (a retry): writing again is harmless and completes it.
                ConditionExpression="attribute_not_exists(id) OR #s <= :s",
                ExpressionAttributeNames={"#s": "sequencer"},
                ExpressionAttributeValues={":s": item["sequencer"]},
            )
        except client_error() as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True
