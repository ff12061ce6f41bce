"""Data survives a restart: tables and buckets are snapshotted on stop and restored on start."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
import requests

from tests.local.conftest import start_twin

pytestmark = pytest.mark.slow


def test_todos_and_objects_survive_a_restart(tmp_path: Path) -> None:
    first = start_twin(tmp_path)
    try:
        created = requests.post(f"{first.api_url}/todos", json={"title": "survives restarts"}, timeout=30).json()
        outputs = json.loads((tmp_path / "outputs.json").read_text())
        buckets = [v for k, v in outputs.items() if k.endswith("BucketName")]
        s3 = boto3.client("s3", endpoint_url=first.aws_url, region_name="eu-west-1")
        for bucket in buckets:
            s3.put_object(Bucket=bucket, Key="kept/note.txt", Body=b"still here", ContentType="text/plain")
    finally:
        assert first.stop() == 0
    assert "snapshot" in first.output()

    second = start_twin(tmp_path)
    try:
        got = requests.get(f"{second.api_url}/todos/{created['id']}", timeout=30)
        assert got.status_code == 200
        assert got.json() == created
        s3 = boto3.client("s3", endpoint_url=second.aws_url, region_name="eu-west-1")
        for bucket in buckets:
            obj = s3.get_object(Bucket=bucket, Key="kept/note.txt")
            assert obj["Body"].read() == b"still here"
            assert obj["ContentType"] == "text/plain"
        ddb = boto3.client("dynamodb", endpoint_url=second.aws_url, region_name="eu-west-1")
        assert ddb.scan(TableName=outputs["todosTableName"], Select="COUNT")["Count"] == 1
    finally:
        assert second.stop() == 0
    stopped = second.cli("status")
    assert stopped.returncode == 3 and "not running" in stopped.stdout
