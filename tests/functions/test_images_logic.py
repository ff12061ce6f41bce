"""The upload logic with in-memory fakes: key mapping, ordering, what is (not) downloaded, what propagates."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from functions.images.errors import ObjectChanged
from functions.images.keys import DerivativeKeys, derivative_keys
from functions.images.logic import normalise_sequencer, process_upload
from functions.images.models import Limits, Outcome, Upload
from functions.images.ports import ObjectInfo, StoredRecord
from tests.functions import images_corpus as corpus

LIMITS = Limits(max_bytes=1_000_000, max_pixels=10_000_000)


def throttled(operation: str) -> ClientError:
    return ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, operation)


class FakeStore:
    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = dict(objects)
        self.calls: list[tuple[str, str]] = []
        self.fail_puts: ClientError | None = None

    def head(self, key: str) -> ObjectInfo:
        self.calls.append(("head", key))
        if key not in self.objects:
            raise ObjectChanged(key)
        return ObjectInfo(size=len(self.objects[key]), etag=f"etag-{len(self.objects[key])}")

    def get(self, key: str, *, etag: str) -> bytes:
        self.calls.append(("get", key))
        if key not in self.objects or etag != f"etag-{len(self.objects[key])}":
            raise ObjectChanged(key)
        return self.objects[key]

    def put_jpeg(self, key: str, data: bytes) -> None:
        self.calls.append(("put", key))
        if self.fail_puts is not None:
            raise self.fail_puts
        self.objects[key] = data


class FakeRepository:
    """Keeps the DynamoDB semantics that matter: consistent reads, and the sequencer condition on save."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.fail_gets: ClientError | None = None

    def get(self, key: str) -> StoredRecord | None:
        if self.fail_gets is not None:
            raise self.fail_gets
        item = self.items.get(key)
        return (
            None
            if item is None
            else StoredRecord(sequencer=item["sequencer"], etag=item["etag"], status=item["status"])
        )

    def save(self, item: dict[str, Any]) -> bool:
        stored = self.items.get(item["id"])
        if stored is not None and stored["sequencer"] > item["sequencer"]:
            return False
        self.items[item["id"]] = item
        return True


def upload_of(data: bytes, *, key: str = "original/a.png", sequencer: str = "10", with_size: bool = True) -> Upload:
    return Upload(
        key=key,
        size=len(data) if with_size else None,
        etag=f"etag-{len(data)}" if with_size else None,
        sequencer=sequencer,
    )


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("original/a/b.png", DerivativeKeys(thumbnail="thumbnails/a/b.jpg", medium="medium/a/b.jpg")),
        ("original/photo.JPEG", DerivativeKeys(thumbnail="thumbnails/photo.jpg", medium="medium/photo.jpg")),
        (
            "original/no-extension",
            DerivativeKeys(thumbnail="thumbnails/no-extension.jpg", medium="medium/no-extension.jpg"),
        ),
        (
            "original/v1.2/x.tar.gif",
            DerivativeKeys(thumbnail="thumbnails/v1.2/x.tar.jpg", medium="medium/v1.2/x.tar.jpg"),
        ),
        ("original/.hidden", DerivativeKeys(thumbnail="thumbnails/.hidden.jpg", medium="medium/.hidden.jpg")),
        (
            "original/my photo+1.jpg",
            DerivativeKeys(thumbnail="thumbnails/my photo+1.jpg", medium="medium/my photo+1.jpg"),
        ),
        ("thumbnails/a.jpg", None),
        ("medium/a.jpg", None),
        ("originals/a.jpg", None),
        ("original/folder/", None),
    ],
)
def test_derivative_keys_keep_the_path_and_change_the_extension(key: str, expected: DerivativeKeys | None) -> None:
    assert derivative_keys(key) == expected


def test_sequencers_of_different_lengths_order_by_value() -> None:
    assert normalise_sequencer("FF") < normalise_sequencer("0100") < normalise_sequencer("0A1B2C3D4E5F678901")
    assert normalise_sequencer("0a1b") == normalise_sequencer("0A1B")
    with pytest.raises(ValueError):
        normalise_sequencer("not-hex")


def test_ok_upload_writes_both_derivatives_then_the_item() -> None:
    data = corpus.rgba_png()
    store, repository = FakeStore({"original/a.png": data}), FakeRepository()

    result = process_upload(upload_of(data), store=store, repository=repository, limits=LIMITS, clock=lambda: "T")

    assert result.outcome is Outcome.OK
    assert store.calls == [("get", "original/a.png"), ("put", "thumbnails/a.jpg"), ("put", "medium/a.jpg")]
    assert repository.items["original/a.png"]["processedAt"] == "T"


def test_size_over_the_cap_in_the_event_is_recorded_without_downloading() -> None:
    data = corpus.panorama_10000x100()
    store, repository = FakeStore({"original/a.png": data}), FakeRepository()
    limits = Limits(max_bytes=len(data) - 1, max_pixels=LIMITS.max_pixels)

    result = process_upload(upload_of(data), store=store, repository=repository, limits=limits)

    assert (result.outcome, result.reason) == (Outcome.FAILED, "TOO_LARGE_BYTES")
    assert store.calls == []
    assert repository.items["original/a.png"]["reason"] == "TOO_LARGE_BYTES"


def test_an_event_without_size_reads_it_with_a_head_first() -> None:
    data = corpus.one_pixel_png()
    store, repository = FakeStore({"original/a.png": data}), FakeRepository()

    result = process_upload(upload_of(data, with_size=False), store=store, repository=repository, limits=LIMITS)

    assert result.outcome is Outcome.OK
    assert store.calls[:2] == [("head", "original/a.png"), ("get", "original/a.png")]
    assert repository.items["original/a.png"]["size"] == len(data)


def test_deleted_object_is_stale() -> None:
    store, repository = FakeStore({}), FakeRepository()

    result = process_upload(upload_of(b"x" * 10), store=store, repository=repository, limits=LIMITS)

    assert result.outcome is Outcome.STALE
    assert repository.items == {}


def test_newer_record_wins_even_if_written_while_we_rendered() -> None:
    data = corpus.one_pixel_png()
    store, repository = FakeStore({"original/a.png": data}), FakeRepository()
    newer = {"id": "original/a.png", "sequencer": normalise_sequencer("20"), "etag": "other", "status": "ok"}

    class RacingStore(FakeStore):
        def put_jpeg(self, key: str, data: bytes) -> None:
            repository.items["original/a.png"] = newer  # a newer event finished in between
            super().put_jpeg(key, data)

    racing = RacingStore(store.objects)
    result = process_upload(upload_of(data, sequencer="10"), store=racing, repository=repository, limits=LIMITS)

    assert result.outcome is Outcome.STALE
    assert repository.items["original/a.png"] is newer


def test_throttled_metadata_read_propagates_for_a_retry() -> None:
    store, repository = FakeStore({"original/a.png": corpus.one_pixel_png()}), FakeRepository()
    repository.fail_gets = throttled("GetItem")

    with pytest.raises(ClientError):
        process_upload(upload_of(corpus.one_pixel_png()), store=store, repository=repository, limits=LIMITS)
    assert store.calls == []


def test_throttled_s3_write_propagates_and_records_nothing() -> None:
    data = corpus.one_pixel_png()
    store, repository = FakeStore({"original/a.png": data}), FakeRepository()
    store.fail_puts = throttled("PutObject")

    with pytest.raises(ClientError):
        process_upload(upload_of(data), store=store, repository=repository, limits=LIMITS)
    assert repository.items == {}


def test_keys_outside_original_touch_nothing() -> None:
    store, repository = FakeStore({}), FakeRepository()

    result = process_upload(upload_of(b"x", key="medium/a.jpg"), store=store, repository=repository, limits=LIMITS)

    assert result.outcome is Outcome.IGNORED
    assert store.calls == [] and repository.items == {}
