"""One upload in, derivatives and one metadata item out. Knows nothing of events, boto3 or Lambda.

Ordering: S3 may deliver events late, twice, or out of order. Each carries the object's `sequencer` (greater means
later, for one key). An event is skipped when the stored record is newer, or is this very event already done; the
download is conditional on the event's ETag (a replaced object means a newer event exists); and the item is written
with a condition on the sequencer, so an older event never overwrites a newer result.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from functions.images.errors import ImageRejected, ObjectChanged
from functions.images.imaging import check_size, render
from functions.images.keys import DerivativeKeys, derivative_keys
from functions.images.models import Derivative, Limits, Outcome, Rendered, Result, Upload
from functions.images.ports import MetadataRepository, ObjectStore

# Sequencers are hex strings of varying length; AWS says to left-pad with zeros before comparing. A fixed width
# makes DynamoDB's string comparison in the ConditionExpression the right order.
SEQUENCER_WIDTH = 48


def normalise_sequencer(sequencer: str) -> str:
    """Upper-case hex left-padded to a fixed width, so string order is event order."""
    value = sequencer.strip().upper()
    int(value or "0", 16)  # reject anything that is not hex: a wrong order would silently lose updates
    return value.rjust(SEQUENCER_WIDTH, "0")


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def process_upload(
    upload: Upload,
    *,
    store: ObjectStore,
    repository: MetadataRepository,
    limits: Limits,
    clock: Callable[[], str] = utc_now,
) -> Result:
    """Make both derivatives and the metadata item for `upload`, or record why it can never succeed.

    Returns what happened. Permanent failures of the file are recorded and returned as `Outcome.FAILED`;
    anything else that goes wrong (throttling, 5xx, access) raises, so the invocation is retried.
    """
    keys = derivative_keys(upload.key)
    if keys is None:
        return Result(outcome=Outcome.IGNORED)
    sequencer = normalise_sequencer(upload.sequencer)
    existing = repository.get(upload.key)
    if existing is not None:
        if existing.sequencer > sequencer:
            return Result(outcome=Outcome.STALE)
        if existing.sequencer == sequencer and existing.etag == upload.etag:
            return Result(outcome=Outcome.DUPLICATE)

    try:
        size, etag = upload.size, upload.etag
        if size is None or not etag:
            info = store.head(upload.key)
            size, etag = info.size, info.etag
        base = {"id": upload.key, "size": size, "etag": etag, "sequencer": sequencer}
        try:
            check_size(size, limits.max_bytes)
            data = store.get(upload.key, etag=etag)
            rendered = render(data, limits)
        except ImageRejected as rejected:
            item = failed_item(base, rejected, processed_at=clock())
            result = Result(outcome=Outcome.FAILED, reason=rejected.reason.value, message=rejected.message)
        else:
            store.put_jpeg(keys.thumbnail, rendered.thumbnail.data)
            store.put_jpeg(keys.medium, rendered.medium.data)
            item = ok_item(base, rendered, keys, processed_at=clock())
            result = Result(outcome=Outcome.OK)
    except ObjectChanged:
        return Result(outcome=Outcome.STALE)
    return result if repository.save(item) else Result(outcome=Outcome.STALE)


def ok_item(base: dict[str, Any], rendered: Rendered, keys: DerivativeKeys, *, processed_at: str) -> dict[str, Any]:
    return {
        **base,
        "status": Outcome.OK.value,
        "format": rendered.format,
        "width": rendered.width,
        "height": rendered.height,
        "thumbnail": _derivative(keys.thumbnail, rendered.thumbnail),
        "medium": _derivative(keys.medium, rendered.medium),
        "processedAt": processed_at,
    }


def failed_item(base: dict[str, Any], rejected: ImageRejected, *, processed_at: str) -> dict[str, Any]:
    return {
        **base,
        "status": Outcome.FAILED.value,
        "reason": rejected.reason.value,
        "message": rejected.message,
        "processedAt": processed_at,
    }


def _derivative(key: str, derivative: Derivative) -> dict[str, Any]:
    return {"key": key, "width": derivative.width, "height": derivative.height}
