"""A failure-queue message outlives a twin restart (moto keeps queues in memory; the snapshot keeps them)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import boto3
import pytest

from tests.local.conftest import PROGRAMS, start_twin

pytestmark = pytest.mark.slow

PROGRAM = PROGRAMS / "s3_pipeline.py"
EXTRA = ("--retry-delays", "0.2,0.4")


def _visible(sqs: object, url: str) -> int:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])  # type: ignore[attr-defined]
    return int(attrs["Attributes"]["ApproximateNumberOfMessages"])


def test_a_failure_record_survives_a_restart(tmp_path: Path) -> None:
    first = start_twin(tmp_path, program=PROGRAM, extra=EXTRA)
    try:
        outputs = json.loads((tmp_path / "outputs.json").read_text())
        s3 = boto3.client("s3", endpoint_url=first.aws_url, region_name="eu-west-1")
        sqs = boto3.client("sqs", endpoint_url=first.aws_url, region_name="eu-west-1")
        s3.put_object(Bucket=outputs["bucketName"], Key="incoming/poison-kept.txt", Body=b"bad")
        deadline = time.monotonic() + 30
        while _visible(sqs, outputs["failureQueueUrl"]) == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _visible(sqs, outputs["failureQueueUrl"]) == 1, "no failure record before the restart"
    finally:
        assert first.stop() == 0
    assert "queue " in first.output() and "snapshot" in first.output()

    second = start_twin(tmp_path, program=PROGRAM, extra=EXTRA)
    try:
        outputs = json.loads((tmp_path / "outputs.json").read_text())
        sqs = boto3.client("sqs", endpoint_url=second.aws_url, region_name="eu-west-1")
        messages = sqs.receive_message(QueueUrl=outputs["failureQueueUrl"], MaxNumberOfMessages=10,
                                       WaitTimeSeconds=1).get("Messages", [])
        assert len(messages) == 1
        record = json.loads(messages[0]["Body"])
        assert record["requestContext"]["condition"] == "RetriesExhausted"
        assert record["requestPayload"]["Records"][0]["s3"]["object"]["key"] == "incoming/poison-kept.txt"
        # the restored object was notified in the first run: no second failure record after the restart
        time.sleep(2)
        assert _visible(sqs, outputs["failureQueueUrl"]) == 0
    finally:
        assert second.stop() == 0
