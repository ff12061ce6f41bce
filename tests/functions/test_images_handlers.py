"""The image function end to end: S3 put events (as `sam local generate-event s3 put` makes them) against moto."""

from __future__ import annotations

import copy
import io
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import quote_plus

import boto3
import pytest
from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError
from PIL import Image

from functions.common import aws
from functions.common.settings import ConfigurationError
from functions.images import settings
from functions.images.handlers import handler
from infra.tables import IMAGE_METADATA
from tests.functions import images_corpus as corpus
from tests.support.dynamo import create_table
from tests.support.events import lambda_context, load_event

BUCKET = "images-test-bucket"
TABLE = "image-metadata-test"
PHOTO_KEY = "original/my photo+1.jpg"


@dataclass
class Pipeline:
    s3: Any
    dynamodb: Any
    sequencers: Iterator[int]

    def upload(self, key: str, data: bytes) -> dict[str, Any]:
        """Put `data` at `key` and return the S3 event AWS would send for it (key URL-encoded, next sequencer)."""
        etag = self.s3.put_object(Bucket=BUCKET, Key=key, Body=data)["ETag"].strip('"')
        return put_event(key, size=len(data), etag=etag, sequencer=f"{next(self.sequencers):018X}")

    def item(self, key: str) -> dict[str, Any] | None:
        found = self.dynamodb.get_item(TableName=TABLE, Key={"id": {"S": key}}, ConsistentRead=True).get("Item")
        return None if found is None else TypeDeserializer().deserialize({"M": found})

    def items(self) -> list[dict[str, Any]]:
        return list(self.dynamodb.scan(TableName=TABLE)["Items"])

    def keys(self, prefix: str = "") -> list[str]:
        listed = self.s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
        return sorted(o["Key"] for o in listed)

    def jpeg(self, key: str) -> tuple[str, bytes, tuple[int, int]]:
        response = self.s3.get_object(Bucket=BUCKET, Key=key)
        data = response["Body"].read()
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "JPEG"
            return response["ContentType"], data, image.size


def put_event(key: str, *, size: int, etag: str, sequencer: str, bucket: str = BUCKET) -> dict[str, Any]:
    event = load_event("s3_put.json")
    record = event["Records"][0]
    record["awsRegion"] = "eu-west-1"
    record["s3"]["bucket"]["name"] = bucket
    record["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
    record["s3"]["object"].update(
        {"key": quote_plus(key, safe="/"), "size": size, "eTag": etag, "sequencer": sequencer}
    )
    return event


def invoke(event: dict[str, Any]) -> list[dict[str, Any]]:
    result = handler(copy.deepcopy(event), cast(Any, lambda_context("images")))
    return list(result["results"])


@pytest.fixture
def pipeline(aws_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    """An empty bucket and metadata table in moto, and the environment the function is deployed with."""
    aws.reset()
    settings.get_env.cache_clear()
    s3 = boto3.client("s3", endpoint_url=aws_endpoint, region_name="eu-west-1")
    dynamodb = boto3.client("dynamodb", endpoint_url=aws_endpoint, region_name="eu-west-1")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    create_table(dynamodb, IMAGE_METADATA, TABLE)
    for name, value in {
        "BUCKET_NAME": BUCKET,
        "TABLE_NAME": TABLE,
        "MAX_IMAGE_BYTES": str(20 * 1024 * 1024),
        "MAX_IMAGE_PIXELS": "50000000",
        "POWERTOOLS_SERVICE_NAME": "images",
        "LOG_LEVEL": "INFO",
    }.items():
        monkeypatch.setenv(name, value)
    yield Pipeline(s3=s3, dynamodb=dynamodb, sequencers=itertools.count(0x5F00000000000001))
    aws.reset()
    settings.get_env.cache_clear()


def test_the_stored_event_template_url_encodes_the_key() -> None:
    event = put_event(PHOTO_KEY, size=1, etag="e", sequencer="01")
    assert event["Records"][0]["s3"]["object"]["key"] == "original/my+photo%2B1.jpg"


def test_put_event_makes_both_jpegs_and_an_ok_item(pipeline: Pipeline) -> None:
    photo = corpus.encode(corpus.photo_like(1200, 900), "JPEG", quality=90)
    event = pipeline.upload(PHOTO_KEY, photo)

    assert invoke(event) == [{"key": PHOTO_KEY, "outcome": "ok", "reason": None}]

    assert pipeline.keys("thumbnails/") == ["thumbnails/my photo+1.jpg"]
    assert pipeline.keys("medium/") == ["medium/my photo+1.jpg"]
    assert pipeline.jpeg("thumbnails/my photo+1.jpg")[::2] == ("image/jpeg", (200, 200))
    assert pipeline.jpeg("medium/my photo+1.jpg")[::2] == ("image/jpeg", (800, 600))
    item = pipeline.item(PHOTO_KEY)
    assert item is not None
    processed_at = item.pop("processedAt")
    assert processed_at.endswith("Z") and processed_at[:2] == "20"
    assert item == {
        "id": PHOTO_KEY,
        "status": "ok",
        "format": "JPEG",
        "width": 1200,
        "height": 900,
        "size": len(photo),
        "etag": event["Records"][0]["s3"]["object"]["eTag"],
        "sequencer": item["sequencer"],
        "thumbnail": {"key": "thumbnails/my photo+1.jpg", "width": 200, "height": 200},
        "medium": {"key": "medium/my photo+1.jpg", "width": 800, "height": 600},
    }
    assert item["sequencer"].endswith(event["Records"][0]["s3"]["object"]["sequencer"])


def test_nested_png_key_gets_jpg_derivatives_under_the_same_path(pipeline: Pipeline) -> None:
    event = pipeline.upload("original/albums/2026/logo.png", corpus.rgba_png())

    assert invoke(event)[0]["outcome"] == "ok"

    assert pipeline.keys("thumbnails/") == ["thumbnails/albums/2026/logo.jpg"]
    assert pipeline.jpeg("medium/albums/2026/logo.jpg")[::2] == ("image/jpeg", (400, 200))


def test_not_an_image_is_recorded_as_failed_and_the_invocation_succeeds(pipeline: Pipeline) -> None:
    event = pipeline.upload("original/notes.jpg", corpus.text_named_jpg())

    assert invoke(event) == [{"key": "original/notes.jpg", "outcome": "failed", "reason": "NOT_AN_IMAGE"}]

    assert pipeline.keys("thumbnails/") == pipeline.keys("medium/") == []
    item = pipeline.item("original/notes.jpg")
    assert item is not None
    assert item["status"] == "failed" and item["reason"] == "NOT_AN_IMAGE" and item["message"]
    assert item["size"] == len(corpus.text_named_jpg()) and "thumbnail" not in item


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "EMPTY"),
        (corpus.truncated_jpeg(), "TRUNCATED"),
        (corpus.png_header_only(9000, 9000), "TOO_MANY_PIXELS"),
    ],
    ids=["zero-bytes", "truncated", "bomb"],
)
def test_poison_files_are_recorded_with_their_reason(pipeline: Pipeline, data: bytes, reason: str) -> None:
    event = pipeline.upload("original/poison.jpg", data)

    assert invoke(event)[0] == {"key": "original/poison.jpg", "outcome": "failed", "reason": reason}
    item = pipeline.item("original/poison.jpg")
    assert item is not None and (item["status"], item["reason"]) == ("failed", reason)


def test_upload_over_the_byte_cap_is_recorded_as_too_large(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_IMAGE_BYTES", "1000")
    event = pipeline.upload("original/big.png", corpus.panorama_10000x100())

    assert invoke(event)[0]["reason"] == "TOO_LARGE_BYTES"
    item = pipeline.item("original/big.png")
    assert item is not None and item["status"] == "failed" and "1000" in item["message"]


def test_same_event_twice_leaves_the_same_objects_and_one_item(pipeline: Pipeline) -> None:
    event = pipeline.upload(PHOTO_KEY, corpus.oriented_jpeg(6))
    invoke(event)
    first_item = pipeline.item(PHOTO_KEY)
    first_thumb = pipeline.jpeg("thumbnails/my photo+1.jpg")

    assert invoke(event)[0]["outcome"] == "duplicate"

    assert pipeline.item(PHOTO_KEY) == first_item
    assert len(pipeline.items()) == 1
    assert pipeline.jpeg("thumbnails/my photo+1.jpg") == first_thumb
    assert pipeline.keys() == ["medium/my photo+1.jpg", PHOTO_KEY, "thumbnails/my photo+1.jpg"]


def test_older_event_never_overwrites_a_newer_result(pipeline: Pipeline) -> None:
    old = pipeline.upload(PHOTO_KEY, corpus.encode(Image.new("RGB", (300, 300), corpus.RED), "JPEG"))
    new = pipeline.upload(PHOTO_KEY, corpus.encode(Image.new("RGB", (600, 300), corpus.BLUE), "JPEG"))
    assert invoke(new)[0]["outcome"] == "ok"
    newer_item = pipeline.item(PHOTO_KEY)

    assert invoke(old)[0]["outcome"] == "stale"

    assert pipeline.item(PHOTO_KEY) == newer_item
    assert newer_item is not None and newer_item["etag"] == new["Records"][0]["s3"]["object"]["eTag"]
    assert pipeline.jpeg("medium/my photo+1.jpg")[2] == (600, 300)


def test_event_for_an_object_replaced_since_is_stale_and_writes_nothing(pipeline: Pipeline) -> None:
    old = pipeline.upload(PHOTO_KEY, corpus.encode(Image.new("RGB", (300, 300), corpus.RED), "JPEG"))
    pipeline.upload(PHOTO_KEY, corpus.encode(Image.new("RGB", (600, 300), corpus.BLUE), "JPEG"))

    assert invoke(old)[0]["outcome"] == "stale"  # its event has not arrived yet; it will do the work

    assert pipeline.item(PHOTO_KEY) is None
    assert pipeline.keys("thumbnails/") == []


def test_a_fixed_reupload_replaces_the_failure_record(pipeline: Pipeline) -> None:
    invoke(pipeline.upload(PHOTO_KEY, corpus.text_named_jpg()))

    assert invoke(pipeline.upload(PHOTO_KEY, corpus.grayscale_jpeg()))[0]["outcome"] == "ok"

    item = pipeline.item(PHOTO_KEY)
    assert item is not None and item["status"] == "ok" and "reason" not in item and "message" not in item
    assert (item["width"], item["height"]) == (500, 400)


def test_keys_outside_original_are_ignored(pipeline: Pipeline) -> None:
    event = pipeline.upload("thumbnails/loop.jpg", corpus.one_pixel_png())

    assert invoke(event)[0]["outcome"] == "ignored"

    assert pipeline.items() == []
    assert pipeline.keys() == ["thumbnails/loop.jpg"]


def test_records_from_another_bucket_are_ignored(pipeline: Pipeline) -> None:
    event = put_event(PHOTO_KEY, size=10, etag="abc", sequencer="01", bucket="someone-elses-bucket")

    assert invoke(event)[0]["outcome"] == "ignored"
    assert pipeline.items() == []


def test_several_records_in_one_event_are_each_processed(pipeline: Pipeline) -> None:
    good = pipeline.upload("original/good.gif", corpus.animated_gif())
    bad = pipeline.upload("original/bad.jpg", b"")
    event = {"Records": good["Records"] + bad["Records"]}

    assert [r["outcome"] for r in invoke(event)] == ["ok", "failed"]
    assert len(pipeline.items()) == 2


def test_s3_test_event_is_a_no_op(pipeline: Pipeline) -> None:
    event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-11-29T18:00:00.000Z", "Bucket": BUCKET}

    assert invoke(event) == []


def test_missing_table_raises_so_lambda_retries(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TABLE_NAME", "no-such-table")
    event = pipeline.upload(PHOTO_KEY, corpus.one_pixel_png())

    with pytest.raises(ClientError) as caught:
        invoke(event)
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_missing_environment_variable_is_named(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAX_IMAGE_PIXELS")
    event = pipeline.upload(PHOTO_KEY, corpus.one_pixel_png())

    with pytest.raises(ConfigurationError, match="MAX_IMAGE_PIXELS"):
        invoke(event)
