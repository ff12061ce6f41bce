"""Lambda entry point of the image pipeline: `functions.images.handlers.handler`, invoked by S3 `ObjectCreated`
notifications on `original/`. Parses each record, runs `logic.process_upload`, logs what happened.

The invocation succeeds when every record was either processed, recorded as a permanent failure, or skipped as
stale/duplicate/out of scope; it raises (so Lambda retries, then sends the event to the on-failure destination)
only for transient or configuration errors. Records already done are skipped on the retry.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event, event_source
from aws_lambda_powertools.utilities.data_classes.s3_event import S3EventRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.common.logging import get_logger
from functions.common.tracing import traced
from functions.images.adapters import DynamoMetadataRepository, S3ObjectStore
from functions.images.logic import process_upload
from functions.images.models import Limits, Outcome, Result, Upload
from functions.images.settings import get_env

SERVICE = "images"
logger = get_logger(SERVICE)


def upload_from_record(record: S3EventRecord) -> Upload:
    """The upload a record announces; the key arrives URL-encoded (`my+photo%2B1.jpg` is `my photo+1.jpg`)."""
    obj = record.s3.get_object
    size = obj.get("size")
    return Upload(
        key=unquote_plus(obj.key),
        size=int(size) if size is not None else None,
        etag=obj.get("eTag") or None,
        # Without a sequencer (not sent by AWS for uploads, but possible from other senders) the last one processed
        # wins, which is what "0" gives with the <= condition.
        sequencer=obj.get("sequencer") or "0",
    )


@traced
@logger.inject_lambda_context(clear_state=True)
@event_source(data_class=S3Event)
def handler(event: S3Event, context: LambdaContext) -> dict[str, Any]:
    env = get_env()
    store = S3ObjectStore(env.BUCKET_NAME)
    repository = DynamoMetadataRepository(env.TABLE_NAME)
    limits = Limits(max_bytes=env.MAX_IMAGE_BYTES, max_pixels=env.MAX_IMAGE_PIXELS)
    # S3 sends a record-less `s3:TestEvent` when a notification is configured: nothing to do.
    records = [S3EventRecord(r) for r in event.get("Records") or []]
    results = []
    for record in records:
        upload = upload_from_record(record)
        if not record.event_name.startswith("ObjectCreated:") or record.s3.bucket.name != env.BUCKET_NAME:
            result = Result(outcome=Outcome.IGNORED)
        else:
            result = process_upload(upload, store=store, repository=repository, limits=limits)
        summary = {"key": upload.key, "outcome": result.outcome.value, "reason": result.reason}
        if result.outcome is Outcome.FAILED:
            logger.warning("image rejected", extra={**summary, "detail": result.message, "size": upload.size})
        else:
            logger.info("image handled", extra={**summary, "size": upload.size})
        results.append(summary)
    return {"results": results}
