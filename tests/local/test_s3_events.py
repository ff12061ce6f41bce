"""The S3 events engine over a small program (tests/local/programs/s3_pipeline.py): bucket notification with a
prefix and suffix filter -> function, 2 retries, then the on-failure queue from the graph."""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from tests.local.conftest import PROGRAMS, RunningTwin, shared_twin

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def s3_twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningTwin]:
    with shared_twin(tmp_path_factory, "s3_pipeline", program=PROGRAMS / "s3_pipeline.py",
                     extra=("--retry-delays", "0.2,0.4")) as twin:
        yield twin


def _clients(twin: RunningTwin) -> tuple[Any, Any, dict[str, str]]:
    outputs = json.loads((twin.state_dir / "outputs.json").read_text())
    s3 = boto3.client("s3", endpoint_url=twin.aws_url, region_name="eu-west-1")
    sqs = boto3.client("sqs", endpoint_url=twin.aws_url, region_name="eu-west-1")
    return s3, sqs, outputs


def _wait_for_object(s3: Any, bucket: str, key: str, timeout: float = 20) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return s3.get_object(Bucket=bucket, Key=key)["Body"].read()  # type: ignore[no-any-return]
        except s3.exceptions.NoSuchKey:
            time.sleep(0.1)
    raise TimeoutError(f"s3://{bucket}/{key} never appeared")


def test_matching_upload_delivers_an_aws_shaped_record(s3_twin: RunningTwin) -> None:
    s3, _, outputs = _clients(s3_twin)
    bucket = outputs["bucketName"]
    key = "incoming/my photo+1.txt"
    put = s3.put_object(Bucket=bucket, Key=key, Body=b"hello world")
    record = json.loads(_wait_for_object(s3, bucket, f"seen/{key}.json"))
    assert record["eventSource"] == "aws:s3" and record["eventName"] == "ObjectCreated:Put"
    assert record["awsRegion"] == "eu-west-1"
    obj = record["s3"]["object"]
    assert obj["key"] == "incoming/my+photo%2B1.txt" == urllib.parse.quote_plus(key, safe="/")
    assert obj["size"] == 11
    assert obj["eTag"] == put["ETag"].strip('"')
    assert len(obj["sequencer"]) >= 16
    assert record["s3"]["bucket"] == {"name": bucket, "ownerIdentity": {"principalId": "LOCALTWIN"},
                                      "arn": f"arn:aws:s3:::{bucket}"}


def test_keys_outside_the_filter_trigger_nothing(s3_twin: RunningTwin) -> None:
    s3, _, outputs = _clients(s3_twin)
    bucket = outputs["bucketName"]
    s3.put_object(Bucket=bucket, Key="incoming/skip.jpg", Body=b"x")    # wrong suffix
    s3.put_object(Bucket=bucket, Key="elsewhere/skip.txt", Body=b"x")   # wrong prefix
    s3.put_object(Bucket=bucket, Key="incoming/marker.txt", Body=b"x")  # matches: proves the poller went past them
    _wait_for_object(s3, bucket, "seen/incoming/marker.txt.json")
    time.sleep(0.5)
    seen = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="seen/").get("Contents", [])]
    assert "seen/incoming/skip.jpg.json" not in seen
    assert "seen/elsewhere/skip.txt.json" not in seen


def test_failing_event_is_retried_twice_then_sent_to_the_failure_queue(s3_twin: RunningTwin) -> None:
    s3, sqs, outputs = _clients(s3_twin)
    bucket = outputs["bucketName"]
    s3.put_object(Bucket=bucket, Key="incoming/poison.txt", Body=b"bad")
    queue_url = outputs["failureQueueUrl"]
    assert queue_url.startswith(s3_twin.aws_url), "the queue URL output is not rewritten to the emulator"
    deadline = time.monotonic() + 30
    messages: list[dict[str, Any]] = []
    while not messages and time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages", [])
    assert messages, "no failure record reached the on-failure queue"
    record = json.loads(messages[0]["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestContext"]["functionArn"].endswith("function:serverless-mesh-dev-recorder:$LATEST")
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorType"] == "ValueError"
    assert record["requestPayload"]["Records"][0]["s3"]["object"]["key"] == "incoming/poison.txt"
    attempts = s3.list_objects_v2(Bucket=bucket, Prefix="attempts/incoming/poison.txt/").get("KeyCount")
    assert attempts == 3


def _attempts(s3: Any, bucket: str, key: str) -> int:
    return int(s3.list_objects_v2(Bucket=bucket, Prefix=f"attempts/{key}/").get("KeyCount", 0))


def _wait_for_attempts(s3: Any, bucket: str, key: str, wanted: int, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while _attempts(s3, bucket, key) < wanted and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.5)  # an extra, wrong delivery would land within the retry delays
    return _attempts(s3, bucket, key)


def test_reuploading_identical_bytes_fires_a_second_event(s3_twin: RunningTwin) -> None:
    s3, _, outputs = _clients(s3_twin)
    bucket = outputs["bucketName"]
    key = "incoming/same-bytes.txt"
    s3.put_object(Bucket=bucket, Key=key, Body=b"identical")
    first = json.loads(_wait_for_object(s3, bucket, f"seen/{key}.json"))
    again = s3.put_object(Bucket=bucket, Key=key, Body=b"identical")
    assert again["ETag"].strip('"') == first["s3"]["object"]["eTag"], "the two uploads are not byte-identical"
    deadline = time.monotonic() + 20
    second = first
    while second["s3"]["object"]["sequencer"] == first["s3"]["object"]["sequencer"] and time.monotonic() < deadline:
        time.sleep(0.1)
        second = json.loads(s3.get_object(Bucket=bucket, Key=f"seen/{key}.json")["Body"].read())
    assert second["s3"]["object"]["sequencer"] > first["s3"]["object"]["sequencer"], "no second event"
    assert second["eventName"] == "ObjectCreated:Put"


def test_two_writes_in_quick_succession_are_two_events(s3_twin: RunningTwin) -> None:
    s3, _, outputs = _clients(s3_twin)
    bucket = outputs["bucketName"]
    key = "incoming/poison-twice.txt"
    s3.put_object(Bucket=bucket, Key=key, Body=b"one")
    s3.put_object(Bucket=bucket, Key=key, Body=b"two")  # same key, well inside any poll interval
    assert _wait_for_attempts(s3, bucket, key, 6) == 6, "two events, each tried 3 times"


def test_copy_into_the_prefix_is_an_object_created_copy_event(s3_twin: RunningTwin) -> None:
    s3, _, outputs = _clients(s3_twin)
    bucket = outputs["bucketName"]
    s3.put_object(Bucket=bucket, Key="elsewhere/source.txt", Body=b"copied")
    s3.copy_object(Bucket=bucket, Key="incoming/copied.txt",
                   CopySource={"Bucket": bucket, "Key": "elsewhere/source.txt"})
    record = json.loads(_wait_for_object(s3, bucket, "seen/incoming/copied.txt.json"))
    assert record["eventName"] == "ObjectCreated:Copy"
    assert record["s3"]["object"]["size"] == 6



def _multipart(s3: Any, bucket: str, key: str, body: bytes) -> str:
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)
    part = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload["UploadId"], PartNumber=1, Body=body)
    done = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload["UploadId"],
                                        MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]})
    return str(done["ETag"]).strip('"')


def test_multipart_upload_is_one_complete_multipart_upload_event(s3_twin: RunningTwin) -> None:
    s3, _, outputs = _clients(s3_twin)
    bucket = outputs["bucketName"]
    etag = _multipart(s3, bucket, "incoming/multipart.txt", b"in one part")
    record = json.loads(_wait_for_object(s3, bucket, "seen/incoming/multipart.txt.json"))
    assert record["eventName"] == "ObjectCreated:CompleteMultipartUpload"
    assert record["s3"]["object"]["eTag"] == etag
    _multipart(s3, bucket, "incoming/poison-multipart.txt", b"bad")
    assert _wait_for_attempts(s3, bucket, "incoming/poison-multipart.txt", 3) == 3, "one event, tried 3 times"
