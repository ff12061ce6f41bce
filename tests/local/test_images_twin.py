"""The seed's image commands against the twin, with the real AWS CLI: upload under original/, then list the
derivatives and scan the metadata table. The upload goes through the S3 event engine to the same handler the
cloud runs."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
from PIL import Image

from tests.local.conftest import RunningTwin

AWS = str(Path(sys.executable).with_name("aws"))


def aws(twin: RunningTwin, *args: str) -> str:
    done = subprocess.run([AWS, "--endpoint-url", twin.aws_url, "--region", "eu-west-1", "--output", "json", *args],
                          capture_output=True, text=True, timeout=120, check=False)
    # `aws s3 ls` exits 1 for an empty listing; anything else that fails is a failure.
    if done.returncode and not (args[:2] == ("s3", "ls") and done.returncode == 1 and not done.stderr.strip()):
        raise AssertionError(f"aws {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return done.stdout


def outputs(twin: RunningTwin) -> dict[str, Any]:
    return json.loads((twin.state_dir / "outputs.json").read_text())


def wait_for_item(twin: RunningTwin, table: str, key: str, timeout: float = 90.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = json.loads(aws(twin, "dynamodb", "scan", "--table-name", table))["Items"]
        for item in items:
            if item["id"]["S"] == key:
                return item
        time.sleep(0.5)
    raise TimeoutError(f"no metadata item for {key} within {timeout} s:\n{twin.output()[-3000:]}")


def photo(path: Path) -> Path:
    # A 1600x900 landscape stored as 900x1600 with EXIF orientation 6 (rotate 90° clockwise to view).
    image = Image.new("RGB", (900, 1600), (200, 40, 40))
    exif = Image.Exif()
    exif[0x0112] = 6
    image.save(path, "JPEG", quality=90, exif=exif)
    return path


def test_seed_upload_makes_a_thumbnail_a_medium_and_a_metadata_item(dev_twin: RunningTwin, tmp_path: Path) -> None:
    out = outputs(dev_twin)
    bucket, table = out["imagesBucketName"], out["imageMetadataTableName"]
    aws(dev_twin, "s3", "cp", str(photo(tmp_path / "photo.jpg")), f"s3://{bucket}/original/my photo.jpg")

    item = wait_for_item(dev_twin, table, "original/my photo.jpg")
    assert item["status"]["S"] == "ok", item
    assert (int(item["width"]["N"]), int(item["height"]["N"])) == (1600, 900)  # orientation applied

    thumbs = aws(dev_twin, "s3", "ls", f"s3://{bucket}/thumbnails/")
    mediums = aws(dev_twin, "s3", "ls", f"s3://{bucket}/medium/")
    assert "my photo.jpg" in thumbs and "my photo.jpg" in mediums

    s3 = boto3.client("s3", endpoint_url=dev_twin.aws_url, region_name="eu-west-1")
    thumb = s3.get_object(Bucket=bucket, Key="thumbnails/my photo.jpg")
    medium = s3.get_object(Bucket=bucket, Key="medium/my photo.jpg")
    assert thumb["ContentType"] == medium["ContentType"] == "image/jpeg"
    assert Image.open(io.BytesIO(thumb["Body"].read())).size == (200, 200)
    assert Image.open(io.BytesIO(medium["Body"].read())).size == (800, 450)


def test_a_file_that_is_not_an_image_is_recorded_as_failed_without_derivatives(
    dev_twin: RunningTwin, tmp_path: Path
) -> None:
    out = outputs(dev_twin)
    bucket, table = out["imagesBucketName"], out["imageMetadataTableName"]
    fake = tmp_path / "notes.jpg"
    fake.write_text("this is not a JPEG")
    aws(dev_twin, "s3", "cp", str(fake), f"s3://{bucket}/original/notes.jpg")

    item = wait_for_item(dev_twin, table, "original/notes.jpg")
    assert item["status"]["S"] == "failed" and item["reason"]["S"] == "NOT_AN_IMAGE", item
    assert "notes.jpg" not in aws(dev_twin, "s3", "ls", f"s3://{bucket}/thumbnails/")
