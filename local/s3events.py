"""The S3 events engine: `aws:s3/bucketNotification:BucketNotification` in the graph -> asynchronous invocations.

moto's server cannot call our workers, but it does send S3 event notifications to its own SQS queues on every
PutObject, PostObject, CopyObject, CompleteMultipartUpload and DeleteObject (moto/s3/notifications.py). So the
engine gives each notified bucket a notification configuration pointing at one internal queue
(`localtwin-s3-events`, every `ObjectCreated:*` and `ObjectRemoved:*` event, no filter) and long-polls it: one
message per write, so re-uploading identical bytes fires again and two writes in quick succession are two events,
as in S3. The engine keeps the graph notification's `events`, `filterPrefix` and `filterSuffix`, and delivers the
record AWS would send (URL-encoded key, bucket name and ARN, size, eTag, sequencer) as an asynchronous invocation:
on error it retries `maximumRetryAttempts` times (2 unless an `aws:lambda/functionEventInvokeConfig` says
otherwise), then sends Lambda's invocation record to the on-failure destination (an SQS queue from the graph). AWS
waits about one and two minutes between retries; the twin waits `retry_delays` (1 s and 2 s by default) so tests
stay fast. Objects restored from a snapshot are written before the notification is configured: they were
notified in an earlier run.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import threading
import time
import urllib.parse
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from local.aws import BUCKETS
from local.engine import Engine, EngineSettings
from local.facts import AwsFacts, Facts, Function, Functions, LambdaFacts, S3EventsFacts
from local.function_spec import InvokeResult
from local.processes import LogSink
from sim.capture import Graph

NOTIFICATION = "aws:s3/bucketNotification:BucketNotification"
INVOKE_CONFIG = "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig"
TYPES = (NOTIFICATION, INVOKE_CONFIG)
DEFAULT_RETRIES = 2
DEFAULT_MAX_EVENT_AGE = 21600
EVENT_QUEUE = "localtwin-s3-events"
# What moto is asked to send; each graph notification's own `events` and filters are applied by `Target.matches`.
WATCHED = ("s3:ObjectCreated:*", "s3:ObjectRemoved:*")
THROTTLE_RETRY_SECONDS = 0.2  # AWS backs off up to minutes; the twin retries soon, tests stay fast


@dataclass(frozen=True)
class Target:
    """One `lambdaFunctions[]` entry of a bucket notification."""

    bucket: str
    function_arn: str
    events: tuple[str, ...]
    prefix: str
    suffix: str
    configuration_id: str

    def matches(self, event_name: str, key: str) -> bool:
        wanted = any(fnmatch.fnmatchcase(f"s3:{event_name}", pattern) for pattern in self.events)
        return wanted and key.startswith(self.prefix) and key.endswith(self.suffix)


@dataclass(frozen=True)
class AsyncConfig:
    max_retries: int = DEFAULT_RETRIES
    max_event_age: int = DEFAULT_MAX_EVENT_AGE
    on_failure: str | None = None   # destination ARN


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def s3_record(*, region: str, event_name: str, bucket: str, key: str, size: int | None, etag: str | None,
              sequencer: str, configuration_id: str, version_id: str | None = None) -> dict[str, Any]:
    """One record of an S3 event notification, as S3 sends it (the key URL-encoded with `+` for spaces)."""
    obj: dict[str, Any] = {"key": urllib.parse.quote_plus(key, safe="/"), "sequencer": sequencer}
    if size is not None:
        obj["size"] = size
    if etag is not None:
        obj["eTag"] = etag.strip('"')
    if version_id:
        obj["versionId"] = version_id
    return {
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": region, "eventTime": _now_iso(),
        "eventName": event_name, "userIdentity": {"principalId": "AWS:LOCALTWIN"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": uuid.uuid4().hex[:16].upper(),
                             "x-amz-id-2": uuid.uuid4().hex},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": configuration_id,
               "bucket": {"name": bucket, "ownerIdentity": {"principalId": "LOCALTWIN"},
                          "arn": f"arn:aws:s3:::{bucket}"},
               "object": obj},
    }


def failure_record(runtime: Function, event: Any, result: InvokeResult | None, *, condition: str,
                   attempts: int) -> dict[str, Any]:
    """What Lambda sends to an on-failure destination (an invocation record)."""
    record: dict[str, Any] = {
        "version": "1.0", "timestamp": _now_iso(),
        "requestContext": {"requestId": result.request_id if result else str(uuid.uuid4()),
                           "functionArn": f"{runtime.spec.arn}:$LATEST", "condition": condition,
                           "approximateInvokeCount": attempts},
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
    }
    if result is not None and result.error is not None:
        record["responsePayload"] = result.error
    return record


class S3EventsEngine(Engine):
    name = "s3-events"
    types = TYPES
    provides = S3EventsFacts
    reads = (AwsFacts, LambdaFacts)

    def __init__(self, sink: LogSink, *, poll_interval: float = 1.0,
                 retry_delays: Sequence[float] = (1.0, 2.0)) -> None:
        self.sink = sink
        self.lambdas: Functions | None = None
        self.aws: AwsFacts | None = None
        self.poll_interval = poll_interval
        self.retry_delays = tuple(retry_delays)
        self.region = "eu-west-1"
        self.targets: list[Target] = []
        self.configs: dict[str, AsyncConfig] = {}   # function ARN -> async config
        self._queue_url: str | None = None
        self._sequence = int(time.time() * 1000) << 16
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="s3-event")
        self.delivered = 0
        self.failed = 0

    @classmethod
    def build(cls, settings: EngineSettings, sink: LogSink) -> S3EventsEngine:
        return cls(sink, retry_delays=settings.retry_delays)

    # --- deploy ------------------------------------------------------------------------------------------------
    def deploy(self, graph: Graph, facts: Facts) -> S3EventsFacts:
        aws = facts.require(AwsFacts)
        self.aws, self.region = aws, aws.region
        functions = self.lambdas = facts.require(LambdaFacts).functions
        buckets = {r.physical_name: r for t in BUCKETS for r in graph.of_type(t)}
        by_ref = {ref: name for name, r in buckets.items() for ref in (name, r.id, r.outputs.get("arn"))}
        for notification in graph.of_type(NOTIFICATION):
            bucket = by_ref.get(str(notification.inputs.get("bucket")), str(notification.inputs.get("bucket")))
            for index, entry in enumerate(notification.inputs.get("lambdaFunctions") or []):
                arn = str(entry.get("lambdaFunctionArn"))
                functions.find(arn)  # a notification to a function that is not in the graph fails the deploy
                self.targets.append(Target(
                    bucket=bucket, function_arn=arn, events=tuple(entry.get("events") or ()),
                    prefix=str(entry.get("filterPrefix") or ""), suffix=str(entry.get("filterSuffix") or ""),
                    configuration_id=str(entry.get("id") or f"{notification.name}-{index}")))
        for cfg in graph.of_type(INVOKE_CONFIG):
            runtime = functions.find(str(cfg.inputs.get("functionName")))
            destination = ((cfg.inputs.get("destinationConfig") or {}).get("onFailure") or {}).get("destination")
            retries = cfg.inputs.get("maximumRetryAttempts")
            age = cfg.inputs.get("maximumEventAgeInSeconds")
            self.configs[runtime.spec.arn] = AsyncConfig(
                max_retries=DEFAULT_RETRIES if retries is None else int(retries),
                max_event_age=DEFAULT_MAX_EVENT_AGE if age is None else int(age), on_failure=destination)
        if not self.targets:
            return S3EventsFacts()
        self._queue_url = self._subscribe(sorted({t.bucket for t in self.targets}))
        self._thread = threading.Thread(target=self._run, name="s3-events", daemon=True)
        self._thread.start()
        return S3EventsFacts(targets=len(self.targets))

    def endpoints(self) -> dict[str, str]:
        return {}

    def status(self) -> dict[str, Any]:
        if not self.targets:
            return {}
        return {"targets": [f"s3://{t.bucket}/{t.prefix}*{t.suffix} -> {t.function_arn.rsplit(':', 1)[-1]}"
                            for t in self.targets], "delivered": self.delivered, "failed": self.failed}

    def _moto(self) -> AwsFacts:
        assert self.aws is not None, "the S3 events engine reads moto's clients from deploy"
        return self.aws

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    # --- detection ---------------------------------------------------------------------------------------------
    def _subscribe(self, buckets: list[str]) -> str:
        """The internal queue, and every notified bucket told to send its object events there."""
        sqs, s3 = self._moto().client("sqs"), self._moto().client("s3")
        url: str = sqs.create_queue(QueueName=EVENT_QUEUE)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        for bucket in buckets:
            s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
                "QueueConfigurations": [{"Id": "localtwin", "QueueArn": arn, "Events": list(WATCHED)}]})
        self._drain(url)  # the s3:TestEvent S3 (and moto) sends when a configuration is set
        return url

    def _drain(self, url: str) -> None:
        sqs = self._moto().client("sqs")
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                if "Records" in json.loads(message["Body"]):
                    self._handle(message["Body"])
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception as exc:
                if not self._stop.is_set():
                    self.sink.write("s3-events", f"poll failed: {exc!r}")
                    self._stop.wait(self.poll_interval)

    def poll_once(self) -> None:
        """One long poll of the internal queue (up to `poll_interval` s); each message is one S3 event."""
        assert self._queue_url is not None
        sqs = self._moto().client("sqs")
        got = sqs.receive_message(QueueUrl=self._queue_url, MaxNumberOfMessages=10,
                                  WaitTimeSeconds=max(1, round(self.poll_interval)))
        for message in got.get("Messages", []):
            self._handle(message["Body"])
            sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])

    def _handle(self, body: str) -> None:
        for record in json.loads(body).get("Records", []):   # an s3:TestEvent has no records
            obj = record["s3"]["object"]
            key = urllib.parse.unquote_plus(obj["key"])      # moto encodes `/` too; s3_record re-encodes as S3 does
            created = record["eventName"].startswith("ObjectCreated:")
            if record["eventName"] == "ObjectCreated:Put" and "-" in str(obj.get("eTag")):
                # moto's CompleteMultipartUpload stores the object with put_object, which notifies a Put, then
                # notifies CompleteMultipartUpload; S3 sends only the latter (a PutObject's ETag never has a `-`).
                continue
            self._emit(record["s3"]["bucket"]["name"], key, record["eventName"],
                       size=obj.get("size") if created else None, etag=obj.get("eTag") if created else None)

    def _emit(self, bucket: str, key: str, event_name: str, *, size: int | None, etag: str | None) -> None:
        for target in self.targets:
            if target.bucket == bucket and target.matches(event_name, key):
                self._sequence += 1
                event = {"Records": [s3_record(region=self.region, event_name=event_name, bucket=bucket, key=key,
                                               size=size, etag=etag, sequencer=f"{self._sequence:018X}",
                                               configuration_id=target.configuration_id)]}
                self._pool.submit(self._deliver, target, event)

    # --- asynchronous invocation -------------------------------------------------------------------------------
    def _deliver(self, target: Target, event: dict[str, Any]) -> None:
        assert self.lambdas is not None  # events are only emitted after deploy
        runtime = self.lambdas.find(target.function_arn)
        config = self.configs.get(runtime.spec.arn, AsyncConfig())
        queued = time.monotonic()
        attempts = 0
        result: InvokeResult | None = None
        key = event["Records"][0]["s3"]["object"]["key"]
        while attempts <= config.max_retries:
            if attempts and time.monotonic() - queued > config.max_event_age:
                self._fail(runtime, config, event, result, "EventAgeExceeded", attempts)
                return
            attempts += 1
            result = runtime.invoke(event)
            if result.throttled and time.monotonic() - queued <= config.max_event_age:
                attempts -= 1  # Lambda's event queue retries a throttle until the event's maximum age, not an attempt
                if self._stop.wait(THROTTLE_RETRY_SECONDS):
                    return
                continue
            if result.ok:
                self.delivered += 1
                return
            self.sink.write("s3-events", f"{runtime.spec.name} failed on s3://{target.bucket}/{key} "
                                         f"(attempt {attempts}): {(result.error or {}).get('errorMessage')}")
            if attempts <= config.max_retries:
                delay = self.retry_delays[min(attempts - 1, len(self.retry_delays) - 1)] if self.retry_delays else 0
                if self._stop.wait(delay):
                    return
        self._fail(runtime, config, event, result, "RetriesExhausted", attempts)

    def _fail(self, runtime: Function, config: AsyncConfig, event: dict[str, Any],
              result: InvokeResult | None, condition: str, attempts: int) -> None:
        self.failed += 1
        record = failure_record(runtime, event, result, condition=condition, attempts=attempts)
        destination = config.on_failure
        if not destination:
            self.sink.write("s3-events", f"{runtime.spec.name}: event dropped after {attempts} attempts ({condition}); "
                                         "no on-failure destination")
            return
        if destination.startswith("arn:aws:sqs:"):
            sqs = self._moto().client("sqs")
            url = sqs.get_queue_url(QueueName=destination.rsplit(":", 1)[-1])["QueueUrl"]
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps(record))
            self.sink.write("s3-events", f"{runtime.spec.name}: {condition} after {attempts} attempts -> {destination}")
        elif destination.startswith("arn:aws:lambda:") and self.lambdas is not None:
            self._pool.submit(self.lambdas.find(destination).invoke, record)
        else:
            self.sink.write("s3-events", f"{runtime.spec.name}: destination {destination} is not emulated; "
                                         "the failure record was dropped")
