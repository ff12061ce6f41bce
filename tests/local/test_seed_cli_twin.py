"""The seed's AWS CLI commands against the twin, changing only the endpoint: upload under original/, list, scan."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from tests.local.conftest import RunningTwin

pytestmark = [pytest.mark.slow]

AWS = str(Path(sys.executable).parent / "aws")


def aws(twin: RunningTwin, *args: str) -> str:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "eu-west-1"}
    env.pop("AWS_ENDPOINT_URL", None)
    env.pop("AWS_PROFILE", None)
    done = subprocess.run([AWS, "--endpoint-url", twin.aws_url, *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_aws_cli_upload_under_original_makes_both_derivatives_and_a_metadata_item(
        dev_twin: RunningTwin, tmp_path: Path) -> None:
    outputs = json.loads((dev_twin.state_dir / "outputs.json").read_text())
    bucket, table = outputs["imagesBucketName"], outputs["imageMetadataTableName"]
    photo = tmp_path / "photo.jpg"
    buf = io.BytesIO()
    Image.new("RGB", (1600, 1200), (200, 40, 40)).save(buf, "JPEG", quality=90)
    photo.write_bytes(buf.getvalue())

    aws(dev_twin, "s3", "cp", str(photo), f"s3://{bucket}/original/seed-cli/photo.jpg")
    deadline = time.monotonic() + 60
    listing = ""
    while time.monotonic() < deadline:
        listing = aws(dev_twin, "s3", "ls", f"s3://{bucket}", "--recursive")
        if "thumbnails/seed-cli/photo.jpg" in listing and "medium/seed-cli/photo.jpg" in listing:
            break
        time.sleep(0.5)
    assert "thumbnails/seed-cli/photo.jpg" in listing and "medium/seed-cli/photo.jpg" in listing, listing

    items = json.loads(aws(dev_twin, "dynamodb", "scan", "--table-name", table))["Items"]
    item = next(i for i in items if i["id"]["S"] == "original/seed-cli/photo.jpg")
    assert item["status"]["S"] == "ok"
    assert (int(item["width"]["N"]), int(item["height"]["N"])) == (1600, 1200)
