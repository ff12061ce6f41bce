"""100 simultaneous uploads of a 12 MP JPEG through the twin's image pipeline, against one at a time.

    .venv/bin/python bench/twin_uploads.py [--images 100] [--sequential 10] [--max-workers 4]

Starts the dev stack's twin, makes one 4000x3000 JPEG (a photo-like gradient with noise, a few MB), then:
  * burst: uploads `--images` copies under `original/` at once (one thread each) and times until every one has its
    metadata item (S3 event -> Lambda workers -> thumbnails and the item), as the seed's "100 simultaneous uploads";
  * one at a time: `--sequential` uploads, each waiting for its item before the next; the per-image time times
    `--images` is what the burst is compared with.
The Lambda function scales to its workers (`--max-workers`, the machine's cap); the S3 events engine delivers
up to 8 events at once. Prints both times, the speed-up, and the load average.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
from PIL import Image, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.local import start, stop
from local.aws import DUMMY_CREDENTIALS

CREDENTIALS = {k.lower(): v for k, v in DUMMY_CREDENTIALS.items()}


def twelve_megapixels() -> bytes:
    noise = Image.effect_noise((4000, 3000), 64).convert("RGB")
    gradient = Image.linear_gradient("L").resize((4000, 3000)).convert("RGB")
    photo = Image.blend(gradient, noise, 0.35).filter(ImageFilter.GaussianBlur(1))
    out = io.BytesIO()
    photo.save(out, "JPEG", quality=90)
    return out.getvalue()


def items(table: Any, keys: set[str]) -> int:
    found, start_key = 0, None
    while True:
        page = table.scan(**({"ExclusiveStartKey": start_key} if start_key else {}))
        found += sum(1 for item in page["Items"] if any(k in json.dumps(item, default=str) for k in keys))
        start_key = page.get("LastEvaluatedKey")
        if not start_key:
            return found


def wait_items(table: Any, keys: set[str], timeout: float) -> float:
    started = time.monotonic()
    while items(table, keys) < len(keys):
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{items(table, keys)} of {len(keys)} metadata items after {timeout:g} s")
        time.sleep(0.2)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--sequential", type=int, default=10)
    parser.add_argument("--max-workers", type=int, default=4, help="the twin's Lambda workers per function")
    args = parser.parse_args()
    jpeg = twelve_megapixels()
    print(f"one 4000x3000 JPEG of {len(jpeg) / 1e6:.1f} MB")
    with tempfile.TemporaryDirectory(prefix="bench-uploads-") as tmp:
        proc, _, ready, _ = start(Path(tmp), extra=("--max-workers", str(args.max_workers)))
        try:
            outputs = json.loads((Path(tmp) / "outputs.json").read_text())
            aws = json.loads((Path(tmp) / "endpoints.json").read_text())["awsEndpointUrl"]
            s3 = boto3.client("s3", endpoint_url=aws, region_name="eu-west-1", **CREDENTIALS)
            table = boto3.resource("dynamodb", endpoint_url=aws, region_name="eu-west-1", **CREDENTIALS).Table(
                outputs["imageMetadataTableName"])
            bucket = outputs["imagesBucketName"]
            print(f"twin ready in {ready:.1f} s; {args.max_workers} image workers at most")

            sequential: list[float] = []
            for _ in range(args.sequential):
                key = f"seq-{uuid.uuid4().hex}"
                t0 = time.monotonic()
                s3.put_object(Bucket=bucket, Key=f"original/{key}.jpg", Body=jpeg, ContentType="image/jpeg")
                wait_items(table, {key}, 120)
                sequential.append(time.monotonic() - t0)
            per_image = sum(sequential) / len(sequential)

            keys = {f"burst-{uuid.uuid4().hex}" for _ in range(args.images)}
            t0 = time.monotonic()
            with ThreadPoolExecutor(args.images) as pool:
                list(pool.map(lambda k: s3.put_object(Bucket=bucket, Key=f"original/{k}.jpg", Body=jpeg,
                                                      ContentType="image/jpeg"), keys))
            uploaded = time.monotonic() - t0
            wait_items(table, keys, 900)
            burst = time.monotonic() - t0
        finally:
            stop(proc)
    print(f"one at a time: {per_image:.2f} s per image (upload -> metadata item, {args.sequential} images), "
          f"{per_image * args.images:.1f} s for {args.images}")
    print(f"{args.images} at once: all uploaded in {uploaded:.1f} s, all metadata items in {burst:.1f} s "
          f"({args.images / burst:.2f} images/s, {per_image * args.images / burst:.1f}x one at a time)")
    print("load average: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
