#!/usr/bin/env python
"""Cold starts of every Lambda handler the program deploys: import time and first-invocation time, fresh processes.

    .venv/bin/python bench/coldstart.py [--runs 15] [--only todos] [--compare /path/to/other/checkout]
    .venv/bin/python bench/coldstart.py --importtime [--top 25]      # one `python -X importtime` per module

The handler list is the program's own: `infra.todos.HANDLERS`, `infra.images.HANDLER`,
`infra.shop_functions.HANDLERS` and `infra.shop_functions.AUTHORIZER_HANDLER`. Each sample is a new interpreter that
imports the handler's module (timed), then
calls the handler once (timed) with a realistic event against a moto server this script starts on 127.0.0.1:
API Gateway v1 proxy events from `tests/support/events.py`, the S3 put and REQUEST-authorizer events of
`tests/events/`, with fresh data per sample (a new todo, a new upload, a new username, a new Idempotency-Key) so
no sample replays another's work. `create_order` reaches inventory/notification through the tests' loopback
stand-in of those services (`tests.functions.shop_support.FakeServices`). Every answer is checked, so an error
path is never what gets timed.

`--compare DIR` runs the same samples against a second checkout (e.g. `git archive <base> | tar -x -C DIR`),
alternating the two per sample so both see the same machine load; the load average (1 min) is sampled around
every sample. The machine is shared: compare medians taken together, never numbers from different runs. The
import's CPU time (`time.process_time`) is printed beside its wall time: it counts the work the import does and is
far less inflated than wall time when other processes compete for the cores.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from functions.common.settings import RUNTIME_ENVIRONMENT  # noqa: E402
from infra import images as images_infra  # noqa: E402
from infra import shop_functions as shop_infra  # noqa: E402
from infra import todos as todos_infra  # noqa: E402
from infra.tables import IDEMPOTENCY, IMAGE_METADATA, ORDERS, TODOS, USERS  # noqa: E402
from tests.functions.shop_support import SERVICE_CLAIMS  # noqa: E402

# Heavy packages whose presence right after the import tells whether a client or utility was built eagerly.
WATCHED = ("boto3", "botocore.session", "requests", "jwt", "PIL.Image")

# What runs in each fresh interpreter: nothing but sys/time/importlib before the timed import.
CHILD = r"""
import sys, time
t0, c0 = time.perf_counter(), time.process_time()
import importlib
module = importlib.import_module(sys.argv[1])
t1, c1 = time.perf_counter(), time.process_time()
loaded = [name for name in sys.argv[5].split(",") if name in sys.modules]
count = len(sys.modules)
import json
from tests.support.events import lambda_context
handler = getattr(module, sys.argv[2])
with open(sys.argv[3]) as f:
    event = json.load(f)
context = lambda_context(sys.argv[2])
t2 = time.perf_counter()
result = handler(event, context)
t3 = time.perf_counter()
with open(sys.argv[4], "w") as f:
    json.dump({"import_ms": (t1 - t0) * 1e3, "import_cpu_ms": (c1 - c0) * 1e3, "invoke_ms": (t3 - t2) * 1e3,
               "loaded": loaded, "modules": count, "result": result}, f, default=str)
"""

TODOS_TABLE = "todos-cold"
IMAGES_BUCKET = "images-cold"
IMAGES_TABLE = "images-cold"
USERS_TABLE = "users-cold"
ORDERS_TABLE = "orders-cold"
IDEMPOTENCY_TABLE = "idempotency-cold"
USER = "cold-user"
PASSWORD = "correct horse battery staple"
SIGNING_KEY = "cold-start-signing-key-0123456789abcdefghijklmnopqrstuvwxyz"


def deployed_handlers() -> list[str]:
    """Every handler string the infra components deploy, in deployment order."""
    todos = [f"functions.todos.handlers.{entry}" for entry in todos_infra.HANDLERS.values()]
    return [*todos, images_infra.HANDLER, *shop_infra.HANDLERS.values(), shop_infra.AUTHORIZER_HANDLER]


def env_model(handler: str) -> Any:
    """The settings model the handler's environment must satisfy (the one its component checks)."""
    if handler.startswith("functions.todos."):
        return todos_infra.TodosEnv
    if handler == images_infra.HANDLER:
        return images_infra.ImagesEnv
    return shop_infra.ENV_MODELS[handler]


@dataclass
class Sample:
    import_ms: float
    import_cpu_ms: float
    invoke_ms: float
    load: float
    loaded: list[str]
    modules: int


@dataclass
class World:
    """The moto account and loopback services every sample runs against, and the data setup needs."""

    endpoint: str
    services_url: str
    secret_arn: str
    service_key_arn: str
    token: str
    ddb: Any
    s3: Any
    jpeg: bytes
    counter: Iterator[int] = field(default_factory=itertools.count)

    def env(self) -> dict[str, str]:
        # A superset: each handler's model reads only its own names (checked against the model in `prepare`).
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "eu-west-1",
            "LOG_LEVEL": "INFO",
            "TABLE_NAME": TODOS_TABLE,
            "USERS_TABLE_NAME": USERS_TABLE,
            "JWT_SECRET_ARN": self.secret_arn,
            "TOKEN_TTL_SECONDS": "900",
            "ORDERS_TABLE_NAME": ORDERS_TABLE,
            "IDEMPOTENCY_TABLE_NAME": IDEMPOTENCY_TABLE,
            "K8S_API_URL": self.services_url,
            "SERVICE_TOKEN_SECRET_ARN": self.service_key_arn,
            **SERVICE_CLAIMS,
            "BUCKET_NAME": IMAGES_BUCKET,
            "MAX_IMAGE_BYTES": str(20 * 1024 * 1024),
            "MAX_IMAGE_PIXELS": "50000000",
        }

    def new_todo(self) -> str:
        from functions.todos.adapters import to_item
        from functions.todos.logic import new_id, utc_now
        from functions.todos.models import Todo

        stamp = utc_now()
        todo = Todo(id=new_id(), title="cold", description="", completed=False, createdAt=stamp, updatedAt=stamp)
        self.ddb.put_item(TableName=TODOS_TABLE, Item=to_item(todo))
        return todo.id


# ---- one realistic event per handler, with fresh data, and the check of its answer --------------------------

Check = Callable[[Any], bool]


def _status(expected: int) -> Check:
    return lambda result: isinstance(result, dict) and result.get("statusCode") == expected


def _todo_item(world: World, method: str, body: Any = None) -> dict[str, Any]:
    from tests.support.events import api_event

    todo_id = world.new_todo()
    return api_event(method, f"/todos/{todo_id}", resource="/todos/{id}", path_parameters={"id": todo_id}, body=body)


def _s3_put(world: World) -> dict[str, Any]:
    from tests.support.events import load_event

    key = f"original/cold {next(world.counter)}+{uuid.uuid4().hex[:8]}.jpg"
    etag = world.s3.put_object(Bucket=IMAGES_BUCKET, Key=key, Body=world.jpeg)["ETag"].strip('"')
    event = load_event("s3_put.json")
    record = event["Records"][0]
    record["awsRegion"] = "eu-west-1"
    record["s3"]["bucket"].update({"name": IMAGES_BUCKET, "arn": f"arn:aws:s3:::{IMAGES_BUCKET}"})
    record["s3"]["object"].update(
        {"key": quote_plus(key, safe="/"), "size": len(world.jpeg), "eTag": etag,
         "sequencer": f"{0x5F00000000000001 + next(world.counter):018X}"}
    )
    return event


def _order_event(method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    from tests.functions.shop_support import order_event

    return order_event(method, path, user_id=USER, **kwargs)


def _authorizer(world: World) -> dict[str, Any]:
    from tests.functions.shop_support import authorizer_event

    return authorizer_event({"Authorization": f"Bearer {world.token}"})


def _processed(result: Any) -> bool:
    return [r.get("outcome") for r in result.get("results", [])] == ["ok"]


def _allowed(result: Any) -> bool:
    return result.get("policyDocument", {}).get("Statement", [{}])[0].get("Effect") == "Allow"


def scenarios(world: World) -> dict[str, tuple[Callable[[], dict[str, Any]], Check]]:
    """handler -> (build a fresh event, check the answer)."""
    from tests.support.events import api_event

    def order_id() -> str:
        from functions.orders.adapters import DynamoOrderRepository
        from functions.orders.models import Order

        order = Order(id=str(uuid.uuid4()), userId=USER, productId="widget", quantity=1, status="confirmed",
                      createdAt="2026-01-01T00:00:00.000000Z")
        DynamoOrderRepository(client=world.ddb, table_name=ORDERS_TABLE).add(order)
        return order.id

    todos = "functions.todos.handlers."
    return {
        todos + "list_todos": (lambda: api_event("GET", "/todos", query={"limit": "10"}), _status(200)),
        todos + "get_todo": (lambda: _todo_item(world, "GET"), _status(200)),
        todos + "create_todo": (lambda: api_event("POST", "/todos", body={"title": "cold start"}), _status(201)),
        todos + "update_todo": (lambda: _todo_item(world, "PUT", {"completed": True}), _status(200)),
        todos + "delete_todo": (lambda: _todo_item(world, "DELETE"), _status(204)),
        "functions.images.handlers.handler": (lambda: _s3_put(world), _processed),
        "functions.auth.handlers.register": (
            lambda: api_event("POST", "/auth/register", body={"username": f"u{uuid.uuid4().hex[:12]}",
                                                              "password": PASSWORD}),
            _status(201),
        ),
        "functions.auth.handlers.token": (
            lambda: api_event("POST", "/auth/token", body={"username": USER, "password": PASSWORD}), _status(200)
        ),
        "functions.auth.handlers.authorizer": (lambda: _authorizer(world), _allowed),
        "functions.orders.handlers.create_order": (
            lambda: _order_event("POST", "/orders", body={"productId": "widget", "quantity": 1},
                                 idempotency_key=uuid.uuid4().hex),
            _status(201),
        ),
        "functions.orders.handlers.get_order": (
            lambda: _order_event("GET", f"/orders/{(oid := order_id())}", resource="/orders/{id}",
                                 path_parameters={"id": oid}),
            _status(200),
        ),
        "functions.orders.handlers.list_orders": (
            lambda: _order_event("GET", "/orders", query={"limit": "5"}), _status(200)
        ),
    }


# ---- the world: moto, tables, secret, a user, a token, the services' stand-in --------------------------------


def _jpeg() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (1600, 1200), (120, 80, 40)).save(out, "JPEG", quality=85)
    return out.getvalue()


@contextmanager
def world() -> Iterator[World]:
    import boto3

    from functions.auth.passwords import hash_password
    from functions.auth.tokens import Identity, issue_token
    from tests.functions.shop_support import FakeServices, fake_services, service_key_pem
    from tests.support.dynamo import create_table
    from tests.support.servers import moto_server

    with ExitStack() as stack:
        endpoint = stack.enter_context(moto_server())
        services = stack.enter_context(fake_services(FakeServices(stock={"widget": 10**9}, cap=10**9)))
        region = {"endpoint_url": endpoint, "region_name": "eu-west-1",
                  "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        ddb, s3 = boto3.client("dynamodb", **region), boto3.client("s3", **region)
        for spec, name in ((TODOS, TODOS_TABLE), (IMAGE_METADATA, IMAGES_TABLE), (USERS, USERS_TABLE),
                           (ORDERS, ORDERS_TABLE), (IDEMPOTENCY, IDEMPOTENCY_TABLE)):
            create_table(ddb, spec, name)
        s3.create_bucket(Bucket=IMAGES_BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        secrets = boto3.client("secretsmanager", **region)
        arn = secrets.create_secret(Name="jwt-cold", SecretString=SIGNING_KEY)["ARN"]
        service_key_arn = secrets.create_secret(Name="service-key-cold", SecretString=service_key_pem()[0])["ARN"]
        ddb.put_item(TableName=USERS_TABLE, Item={
            "username": {"S": USER}, "userId": {"S": "id-" + USER}, "passwordHash": {"S": hash_password(PASSWORD)},
            "createdAt": {"S": "2026-01-01T00:00:00+00:00"}})
        token = issue_token(Identity(user_id="id-" + USER, username=USER), key=SIGNING_KEY, ttl_seconds=86_400)
        w = World(endpoint=endpoint, services_url=services.url, secret_arn=arn, service_key_arn=service_key_arn,
                  token=token, ddb=ddb, s3=s3,
                  jpeg=_jpeg())
        # The images function writes to its own table; the todos table name is TABLE_NAME for both groups' models.
        yield w


def child_env(world: World, handler: str) -> dict[str, str]:
    from functions.common.settings import load_env

    env = world.env()
    if handler == images_infra.HANDLER:
        env["TABLE_NAME"] = IMAGES_TABLE
    env["POWERTOOLS_SERVICE_NAME"] = handler.split(".")[1]
    load_env(env_model(handler), env)  # fails naming the variable if the bench lags behind a settings model
    return {**deployed_like_env(), **env}


def deployed_like_env() -> dict[str, str]:
    """This process' environment as a deployed function would see it, for every timed child."""
    # PYTHONDONTWRITEBYTECODE (set on some machines) is dropped so run 0 leaves every module's .pyc behind: the
    # deployed artifacts ship bytecode (infra/bytecode.py), so a timed import must not compile our code from source.
    dropped = ("PYTHONPATH", "AWS_PROFILE", "PYTHONDONTWRITEBYTECODE")
    base = {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("AWS_")}
    return {**base, **RUNTIME_ENVIRONMENT}  # what every deployed function's environment holds


def sample(tree: Path, handler: str, event: dict[str, Any], env: Mapping[str, str], check: Check,
           scratch: Path) -> Sample:
    module, _, attr = handler.rpartition(".")
    event_path, out_path = scratch / "event.json", scratch / "out.json"
    event_path.write_text(json.dumps(event))
    out_path.unlink(missing_ok=True)
    before = os.getloadavg()[0]
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, module, attr, str(event_path), str(out_path), ",".join(WATCHED)],
        cwd=tree, env=dict(env), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120,
    )
    load = (before + os.getloadavg()[0]) / 2
    if proc.returncode != 0:
        raise RuntimeError(f"{handler} in {tree} failed:\n{proc.stderr.decode()[-3000:]}")
    out = json.loads(out_path.read_text())
    if not check(out["result"]):
        raise RuntimeError(f"{handler} in {tree} answered {out['result']!r}")
    return Sample(out["import_ms"], out["import_cpu_ms"], out["invoke_ms"], load, out["loaded"], out["modules"])


# The libraries' own share of a handler's import, each timed alone in a fresh interpreter from the repo root (so
# `functions` installs its lazy Powertools packages, as in a handler): what no handler can import faster.
# Built on first use, as every model of ours is (`defer_build`).
MODEL = ("from pydantic import BaseModel, ConfigDict, Field\nclass Todo(BaseModel):\n"
         "    model_config = ConfigDict(defer_build=True)\n    title: str = Field(min_length=1)\n")
REST = "import functions\nfrom aws_lambda_powertools.event_handler import APIGatewayRestResolver\n"
LOGGER = "from aws_lambda_powertools import Logger\n"
FLOOR = {
    "pydantic: one model with a Field": MODEL,
    "Powertools Logger": LOGGER,
    "Powertools Logger + REST resolver": LOGGER + REST,
    "all three": MODEL + LOGGER + REST,
}
FLOOR_CHILD = "import sys, time; t0 = time.perf_counter(); exec(sys.argv[1]); print((time.perf_counter() - t0) * 1e3)"
# A fixed piece of pure-Python work: its time says how fast this machine is, to read numbers from another one.
CALIBRATION = "s = 0\nfor i in range(2_000_000): s += i"
SPEED = "(machine speed: 2 M loop additions, not an import)"


Floors = dict[str, list[float]]


def measure(trees: list[Path], handlers: list[str], runs: int) -> tuple[dict[tuple[str, Path], list[Sample]], Floors]:
    """Every handler in every tree once per run, then each FLOOR statement once: all share the run's machine load."""
    results: dict[tuple[str, Path], list[Sample]] = {(h, t): [] for h in handlers for t in trees}
    floors: Floors = {label: [] for label in [*FLOOR, SPEED]}
    with world() as w, tempfile.TemporaryDirectory(prefix="coldstart-") as tmp:
        cases = scenarios(w)
        missing = set(handlers) - set(cases)
        if missing:
            raise SystemExit(f"no cold-start scenario for deployed handler(s) {sorted(missing)}")
        scratch = Path(tmp)
        for run in range(runs + 1):  # run 0 warms the bytecode caches of both trees and is discarded
            for handler in handlers:
                build, check = cases[handler]
                env = child_env(w, handler)
                order = trees if run % 2 == 0 else trees[::-1]  # alternate who goes first
                for tree in order:
                    got = sample(tree, handler, build(), env, check, scratch)
                    if run:
                        results[(handler, tree)].append(got)
            for label, statement in [*FLOOR.items(), (SPEED, CALIBRATION)]:
                took = timed_statement(statement)
                if run:
                    floors[label].append(took)
            print(f"run {run}/{runs} done, load {os.getloadavg()[0]:.2f}", file=sys.stderr)
    return results, floors


def table(results: dict[tuple[str, Path], list[Sample]], trees: list[Path], handlers: list[str]) -> str:
    labels = {tree: ("this tree" if tree == ROOT else str(tree)) for tree in trees}
    lines = ["| handler | tree | import ms (median) | import CPU ms (median) | first invocation ms (median) | "
             "cold total ms (median) | modules | loaded after import | load avg |",
             "|---|---|---:|---:|---:|---:|---:|---|---:|"]
    for handler in handlers:
        for tree in trees:
            got = results[(handler, tree)]
            lines.append(
                f"| `{handler.removeprefix('functions.')}` | {labels[tree]} "
                f"| {statistics.median(s.import_ms for s in got):.0f} "
                f"| {statistics.median(s.import_cpu_ms for s in got):.0f} "
                f"| {statistics.median(s.invoke_ms for s in got):.0f} "
                f"| {statistics.median(s.import_ms + s.invoke_ms for s in got):.0f} "
                f"| {statistics.median(s.modules for s in got):.0f} "
                f"| {', '.join(sorted(set().union(*(s.loaded for s in got)))) or '-'} "
                f"| {statistics.mean(s.load for s in got):.2f} |"
            )
    return "\n".join(lines)


def timed_statement(statement: str) -> float:
    return float(subprocess.run([sys.executable, "-c", FLOOR_CHILD, statement], cwd=ROOT, env=deployed_like_env(),
                                check=True, capture_output=True, text=True).stdout)


def floor_table(floors: Floors) -> str:
    lines = ["| imported alone | ms (median) |", "|---|---:|"]
    lines += [f"| {label} | {statistics.median(times):.0f} |" for label, times in floors.items()]
    return "\n".join(lines)


def importtime(handlers: list[str], top: int) -> None:
    """`python -X importtime` of each handler module in a fresh process: the `top` largest cumulative entries."""
    for module in dict.fromkeys(h.rpartition(".")[0] for h in handlers):
        proc = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"], cwd=ROOT,
                              capture_output=True, text=True, check=True)
        rows = []
        for line in proc.stderr.splitlines():
            parts = line.split("|")
            if len(parts) != 3 or not parts[1].strip().isdigit():
                continue  # the header line, or anything that is not an import record
            self_us = int(parts[0].removeprefix("import time:"))
            rows.append((int(parts[1]), self_us, parts[2].rstrip()))
        print(f"\n## {module}  (load avg {os.getloadavg()[0]:.2f})\n")
        print("| cumulative ms | self ms | module |\n|---:|---:|---|")
        for cumulative, self_us, name in sorted(rows, reverse=True)[:top]:
            print(f"| {cumulative / 1e3:.1f} | {self_us / 1e3:.1f} | `{name.strip()}` |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15, help="fresh processes per handler (and per tree)")
    parser.add_argument("--only", help="only handlers whose string contains this (e.g. todos, orders.create)")
    parser.add_argument("--compare", type=Path, action="append", default=[], help="another checkout to interleave")
    parser.add_argument("--importtime", action="store_true", help="print -X importtime breakdowns instead")
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()
    handlers = [h for h in deployed_handlers() if not args.only or args.only in h]
    if args.importtime:
        importtime(handlers, args.top)
        return
    trees = [*(p.resolve() for p in args.compare), ROOT]
    start = os.getloadavg()
    results, floors = measure(trees, handlers, args.runs)
    end = os.getloadavg()
    print(f"\nPython {sys.version.split()[0]}, {os.cpu_count()} CPUs, {args.runs} fresh processes per row; "
          f"load average (1/5/15 min) at start {start[0]:.2f}/{start[1]:.2f}/{start[2]:.2f}, "
          f"at end {end[0]:.2f}/{end[1]:.2f}/{end[2]:.2f}\n")
    print(table(results, trees, handlers))
    print("\nWhat the libraries alone cost (sampled once per run, between the handlers):\n")
    print(floor_table(floors))


if __name__ == "__main__":
    main()
