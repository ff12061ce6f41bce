"""The AWS engine: moto server on 127.0.0.1 holding the graph's tables, buckets, queues and secrets.

Everything is created from the resource inputs in the graph, under the graph's physical names: a table gets the
keys, attribute types, indexes and TTL the `aws:dynamodb/table:Table` declares, so a key-schema bug shows up
locally. moto keeps data in memory only, so `snapshot()` writes every table (scan), bucket (objects) and queue
(its visible messages: body, attributes, original send time) into the state folder on stop and `restore()` loads
them on start. A restored message is a new message to SQS (new id, receive count 0); one a consumer had received
and not deleted when the twin stopped is invisible to the snapshot and is lost, where SQS would redeliver it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from local.engine import Engine, EngineSettings
from local.facts import AwsFacts, Facts
from local.processes import LOOPBACK, LogSink, free_port, start_process, stop_process, wait_for_http
from sim.capture import Graph, Resource

TABLE = "aws:dynamodb/table:Table"
BUCKETS = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
BUCKET_VERSIONING = ("aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketVersioningV2:BucketVersioningV2")
QUEUE = "aws:sqs/queue:Queue"
SECRET = "aws:secretsmanager/secret:Secret"
SECRET_VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
TYPES = (TABLE, *BUCKETS, *BUCKET_VERSIONING, QUEUE, SECRET, SECRET_VERSION)

# moto's per-request access log (werkzeug) goes to the log file only; the S3 poller alone makes 5 lines a second.
_ACCESS_LOG = re.compile(r'^\d+\.\d+\.\d+\.\d+ - - \[[^]]+\] "[A-Z]+ \S+ HTTP/[\d.]+" [23]\d\d ')

DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}


def client(service: str, endpoint: str, region: str) -> Any:
    """A boto3 client on the emulator with dummy credentials (never an ambient profile)."""
    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", aws_session_token="testing", region_name=region,
    ).client(service, endpoint_url=endpoint, config=Config(retries={"max_attempts": 3, "mode": "standard"}))


def table_request(resource: Resource) -> dict[str, Any]:
    """CreateTable parameters from an `aws:dynamodb/table:Table`'s inputs."""
    i = resource.inputs

    def keys(hash_key: str, range_key: str | None) -> list[dict[str, str]]:
        schema = [{"AttributeName": hash_key, "KeyType": "HASH"}]
        if range_key:
            schema.append({"AttributeName": range_key, "KeyType": "RANGE"})
        return schema

    def projection(index: dict[str, Any]) -> dict[str, Any]:
        proj: dict[str, Any] = {"ProjectionType": index.get("projectionType") or "ALL"}
        if index.get("nonKeyAttributes"):
            proj["NonKeyAttributes"] = list(index["nonKeyAttributes"])
        return proj

    request: dict[str, Any] = {
        "TableName": resource.physical_name,
        "KeySchema": keys(i["hashKey"], i.get("rangeKey")),
        "AttributeDefinitions": [{"AttributeName": a["name"], "AttributeType": a["type"]} for a in i["attributes"]],
        "BillingMode": i.get("billingMode") or "PROVISIONED",
    }
    if request["BillingMode"] == "PROVISIONED":
        request["ProvisionedThroughput"] = {"ReadCapacityUnits": int(i.get("readCapacity") or 1),
                                            "WriteCapacityUnits": int(i.get("writeCapacity") or 1)}
    def index_keys(index: dict[str, Any]) -> list[dict[str, str]]:
        # pulumi-aws 7 indexes declare `keySchemas`; the deprecated hashKey/rangeKey form is still accepted.
        if index.get("keySchemas"):
            return [{"AttributeName": k["attributeName"], "KeyType": k["keyType"]} for k in index["keySchemas"]]
        return keys(index["hashKey"], index.get("rangeKey"))

    gsis = [{"IndexName": g["name"], "KeySchema": index_keys(g), "Projection": projection(g)}
            for g in i.get("globalSecondaryIndexes") or []]
    if request["BillingMode"] == "PROVISIONED":
        for g in gsis:
            g["ProvisionedThroughput"] = request["ProvisionedThroughput"]
    if gsis:
        request["GlobalSecondaryIndexes"] = gsis
    lsis = [{"IndexName": x["name"], "KeySchema": keys(i["hashKey"], x["rangeKey"]), "Projection": projection(x)}
            for x in i.get("localSecondaryIndexes") or []]
    if lsis:
        request["LocalSecondaryIndexes"] = lsis
    if i.get("streamEnabled"):
        request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": i.get("streamViewType")}
    return request


def _safe(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:24]


class AwsEngine(Engine):
    """moto server plus the graph's data stores in it, restored from the last snapshot and snapshotted on stop."""

    name = "moto"
    types = TYPES
    provides = AwsFacts
    # Making the stores is HTTP calls to moto (started in `prepare`): it runs beside PostgreSQL, services and mesh.
    concurrent = True

    def __init__(self, sink: LogSink, *, port: int = 0, data_dir: Path) -> None:
        self.sink = sink
        self.port = port or free_port()
        self.data_dir = data_dir
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.proc: Any = None
        self.region = "eu-west-1"
        self.tables: list[str] = []
        self.buckets: list[str] = []
        self.queues: dict[str, str] = {}   # graph queue URL -> emulator queue URL
        self.secret_arns: dict[str, str] = {}  # graph secret ARN -> emulator secret ARN
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        self._data_loaded = False

    @classmethod
    def build(cls, settings: EngineSettings, sink: LogSink) -> AwsEngine:
        return cls(sink, port=settings.aws_port, data_dir=settings.state_dir / "data")

    # --- the engine contract -----------------------------------------------------------------------------------
    def prepare(self) -> None:
        self.start(wait=False)  # moto boots while the program runs under the mocks

    def deploy(self, graph: Graph, facts: Facts) -> AwsFacts:
        if self.proc is None:
            self.start(wait=False)
        self.wait_ready()
        self.create(graph)
        restored = self.restore()
        self._data_loaded = True  # from here on, stopping snapshots the data (never before: it would erase it)
        if restored:
            self.sink.write("twin", "restored " + ", ".join(f"{k} ({n})" for k, n in restored.items()))
        return AwsFacts(endpoint_url=self.url, region=self.region, client=self.client, tables=tuple(self.tables),
                        buckets=tuple(self.buckets), translations=self.translations())

    def endpoints(self) -> dict[str, str]:
        return {"awsEndpointUrl": self.url, "region": self.region}

    def status(self) -> dict[str, Any]:
        if self.proc is None:
            return {}
        return {"url": self.url, "pid": self.proc.pid, "tables": list(self.tables), "buckets": list(self.buckets),
                "queues": len(self.queues), "secrets": len(self.secret_arns)}

    def stop(self) -> None:
        """Snapshot the data (once it was loaded, and while moto answers), then stop moto."""
        try:
            if self._data_loaded and self.proc is not None and self.proc.poll() is None:
                counts = self.snapshot()
                self.sink.write("twin", "snapshot " + (", ".join(f"{k} ({n})" for k, n in counts.items()) or "empty")
                                + f" -> {self.data_dir}")
        finally:
            self._data_loaded = False
            self.stop_server()

    # --- lifecycle -------------------------------------------------------------------------------------------
    def start(self, *, wait: bool = True) -> None:
        """Start moto; with `wait=False` the caller does other work and calls `wait_ready()` later."""
        exe = Path(sys.executable).parent / "moto_server"
        argv = [str(exe)] if exe.exists() else [sys.executable, "-m", "moto.server"]
        self.proc = start_process([*argv, "-H", LOOPBACK, "-p", str(self.port)], "moto", self.sink,
                                  quiet=lambda line: bool(_ACCESS_LOG.match(line)))
        if wait:
            self.wait_ready()
        else:
            threading.Thread(target=self._warm, name="moto-warm", daemon=True).start()

    def wait_ready(self) -> None:
        wait_for_http(f"{self.url}/moto-api/", timeout=30, proc=self.proc)

    def _warm(self) -> None:
        """moto imports a service's backend on its first request: make those while the graph is captured."""
        try:
            self.wait_ready()
            self.client("dynamodb").list_tables()
            self.client("s3").list_buckets()
            self.client("sqs").list_queues()
            self.client("secretsmanager").list_secrets()
        except Exception as exc:  # only an optimisation; deploy reports real failures
            self.sink.write("moto", f"warm-up skipped: {exc!r}", console=False)

    def stop_server(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    def client(self, service: str) -> Any:
        with self._clients_lock:
            if service not in self._clients:
                self._clients[service] = client(service, self.url, self.region)
            return self._clients[service]

    # --- the data stores ---------------------------------------------------------------------------------------
    def create(self, graph: Graph) -> None:
        """Every table, bucket, queue and secret of the graph, under its physical name."""
        if graph.region != self.region:
            with self._clients_lock:
                self._clients.clear()  # the warm-up's clients were for the default region
        self.region = graph.region
        ddb, s3, sqs, sm = (self.client(s) for s in ("dynamodb", "s3", "sqs", "secretsmanager"))
        for res in graph.of_type(TABLE):
            ddb.create_table(**table_request(res))
            ttl = res.inputs.get("ttl") or {}
            if ttl.get("enabled") and ttl.get("attributeName"):
                ddb.update_time_to_live(TableName=res.physical_name, TimeToLiveSpecification={
                    "Enabled": True, "AttributeName": ttl["attributeName"]})
            self.tables.append(res.physical_name)
        for type_token in BUCKETS:
            for res in graph.of_type(type_token):
                kwargs: dict[str, Any] = {"Bucket": res.physical_name}
                if graph.region != "us-east-1":
                    kwargs["CreateBucketConfiguration"] = {"LocationConstraint": graph.region}
                s3.create_bucket(**kwargs)
                self.buckets.append(res.physical_name)
        for type_token in BUCKET_VERSIONING:
            for res in graph.of_type(type_token):
                status = (res.inputs.get("versioningConfiguration") or {}).get("status")
                if status in ("Enabled", "Suspended"):
                    s3.put_bucket_versioning(Bucket=self._bucket_name(graph, res.inputs["bucket"]),
                                             VersioningConfiguration={"Status": status})
        for res in graph.of_type(QUEUE):
            attrs = self._queue_attributes(res)
            made = sqs.create_queue(QueueName=res.physical_name, Attributes=attrs)
            self.queues[str(res.outputs.get("url") or res.id)] = made["QueueUrl"]
        for res in graph.of_type(SECRET):
            made = sm.create_secret(Name=res.physical_name, Description=res.inputs.get("description") or "")
            self.secret_arns[str(res.outputs["arn"])] = made["ARN"]
        for res in graph.of_type(SECRET_VERSION):
            secret_id = str(res.inputs["secretId"])
            target = self.secret_arns.get(secret_id, secret_id)
            if "secretString" in res.inputs:
                sm.put_secret_value(SecretId=target, SecretString=str(res.inputs["secretString"]))
            elif "secretBinary" in res.inputs:
                sm.put_secret_value(SecretId=target, SecretBinary=base64.b64decode(res.inputs["secretBinary"]))

    @staticmethod
    def _bucket_name(graph: Graph, ref: str) -> str:
        for type_token in BUCKETS:
            for res in graph.of_type(type_token):
                if ref in (res.physical_name, res.id, res.outputs.get("arn")):
                    return res.physical_name
        return ref

    @staticmethod
    def _queue_attributes(res: Resource) -> dict[str, str]:
        i = res.inputs
        names = {"visibilityTimeoutSeconds": "VisibilityTimeout", "messageRetentionSeconds": "MessageRetentionPeriod",
                 "delaySeconds": "DelaySeconds", "maxMessageSize": "MaximumMessageSize",
                 "receiveWaitTimeSeconds": "ReceiveMessageWaitTimeSeconds", "redrivePolicy": "RedrivePolicy"}
        attrs = {aws: str(int(i[k]) if isinstance(i[k], float) else i[k]) for k, aws in names.items()
                 if i.get(k) is not None}
        if i.get("fifoQueue"):
            attrs["FifoQueue"] = "true"
            if i.get("contentBasedDeduplication"):
                attrs["ContentBasedDeduplication"] = "true"
        return attrs

    def translations(self) -> dict[str, str]:
        """Identifiers the mock invented -> the emulator's real ones (env values, outputs)."""
        return {**self.queues, **self.secret_arns}

    # --- data that outlives the emulator ---------------------------------------------------------------------
    def snapshot(self) -> dict[str, int]:
        """Write every table's items and every bucket's objects under `data_dir`; returns counts."""
        counts: dict[str, int] = {}
        tmp = self.data_dir.with_name(self.data_dir.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "tables").mkdir(parents=True)
        (tmp / "buckets").mkdir(parents=True)
        (tmp / "queues").mkdir(parents=True)
        for table in self.tables:
            items = list(self._scan(table))
            (tmp / "tables" / f"{table}.json").write_text(json.dumps({"table": table, "items": items}))
            counts[f"table {table}"] = len(items)
        s3 = self.client("s3")
        for bucket in self.buckets:
            folder = tmp / "buckets" / bucket
            folder.mkdir()
            index = []
            for obj in self._objects(bucket):
                got = s3.get_object(Bucket=bucket, Key=obj["Key"])
                blob = _safe(obj["Key"])
                (folder / blob).write_bytes(got["Body"].read())
                index.append({"key": obj["Key"], "blob": blob, "contentType": got.get("ContentType"),
                              "metadata": got.get("Metadata") or {}})
            (folder / "index.json").write_text(json.dumps(index))
            counts[f"bucket {bucket}"] = len(index)
        for url in self.queues.values():
            name = url.rstrip("/").rsplit("/", 1)[-1]
            messages = self._drain_queue(url)
            (tmp / "queues" / f"{name}.json").write_text(json.dumps({"queue": name, "messages": messages}))
            counts[f"queue {name}"] = len(messages)
        shutil.rmtree(self.data_dir, ignore_errors=True)
        tmp.rename(self.data_dir)
        return counts

    def restore(self) -> dict[str, int]:
        """Load the last snapshot into the tables and buckets that exist in this graph (same names)."""
        counts: dict[str, int] = {}
        ddb, s3 = self.client("dynamodb"), self.client("s3")
        for table in self.tables:
            path = self.data_dir / "tables" / f"{table}.json"
            if not path.exists():
                continue
            items = json.loads(path.read_text())["items"]
            for start in range(0, len(items), 25):
                pending: dict[str, Any] = {table: [{"PutRequest": {"Item": it}} for it in items[start:start + 25]]}
                while pending:
                    pending = ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            counts[f"table {table}"] = len(items)
        for bucket in self.buckets:
            index_path = self.data_dir / "buckets" / bucket / "index.json"
            if not index_path.exists():
                continue
            index = json.loads(index_path.read_text())
            for entry in index:
                extra: dict[str, Any] = {"Metadata": entry.get("metadata") or {}}
                if entry.get("contentType"):
                    extra["ContentType"] = entry["contentType"]
                body = (index_path.parent / entry["blob"]).read_bytes()
                s3.put_object(Bucket=bucket, Key=entry["key"], Body=body, **extra)
            counts[f"bucket {bucket}"] = len(index)
        for url in self.queues.values():
            name = url.rstrip("/").rsplit("/", 1)[-1]
            path = self.data_dir / "queues" / f"{name}.json"
            if path.exists():
                counts[f"queue {name}"] = self._refill_queue(url, json.loads(path.read_text())["messages"])
        return counts

    def _drain_queue(self, url: str) -> list[dict[str, Any]]:
        """Every visible message of a queue, in receive order. The emulator is about to stop, so receiving them
        (hidden for the visibility timeout) changes nothing anyone can observe."""
        sqs = self.client("sqs")
        out: list[dict[str, Any]] = []
        while True:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600,
                                      AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", [])
            if not got:
                return out
            out += [{"body": m["Body"], "attributes": m.get("Attributes") or {},
                     "messageAttributes": m.get("MessageAttributes") or {}} for m in got]

    def _refill_queue(self, url: str, messages: list[dict[str, Any]]) -> int:
        """Send the snapshot's messages again, dropping those past the queue's retention period (as SQS would)."""
        sqs = self.client("sqs")
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["MessageRetentionPeriod", "FifoQueue"])
        retention_ms = int(attrs["Attributes"].get("MessageRetentionPeriod", "345600")) * 1000
        fifo = attrs["Attributes"].get("FifoQueue") == "true"
        now_ms = time.time() * 1000
        sent = 0
        for message in messages:
            attributes = message["attributes"]
            if now_ms - int(attributes.get("SentTimestamp", now_ms)) > retention_ms:
                continue
            kwargs: dict[str, Any] = {"QueueUrl": url, "MessageBody": message["body"]}
            if message["messageAttributes"]:
                kwargs["MessageAttributes"] = {
                    k: {f: v for f, v in a.items() if f in ("DataType", "StringValue", "BinaryValue")}
                    for k, a in message["messageAttributes"].items()}
            if fifo:
                kwargs["MessageGroupId"] = attributes.get("MessageGroupId", "default")
                kwargs["MessageDeduplicationId"] = attributes.get("MessageDeduplicationId") or _safe(
                    message["body"] + str(sent))
            sqs.send_message(**kwargs)
            sent += 1
        return sent

    def _scan(self, table: str) -> Iterator[dict[str, Any]]:
        ddb = self.client("dynamodb")
        kwargs: dict[str, Any] = {"TableName": table}
        while True:
            page = ddb.scan(**kwargs)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _objects(self, bucket: str) -> Iterator[dict[str, Any]]:
        paginator = self.client("s3").get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket):
            yield from page.get("Contents", [])

    def counts(self) -> dict[str, dict[str, int]]:
        """Items per table and objects per bucket, as the emulator holds them now."""
        ddb = self.client("dynamodb")
        tables = {}
        for table in self.tables:
            total, kwargs = 0, {"TableName": table, "Select": "COUNT"}
            while True:
                page = ddb.scan(**kwargs)
                total += page["Count"]
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
            tables[table] = total
        buckets = {b: sum(1 for _ in self._objects(b)) for b in self.buckets}
        return {"tables": tables, "buckets": buckets}
