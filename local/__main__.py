"""`python -m local up|plan|outputs|status`: the stack's own resource graph, run on this machine.

    up       capture the graph, deploy it onto the local engines, print endpoints and `ready in N s`,
             stream every component's logs prefixed by component; Ctrl-C (or SIGTERM) stops everything
    plan     every resource in the graph and what the twin does with it (`--json` for tools)
    outputs  the stack's exports resolved against the twin, like `pulumi stack output --json`
    status   what runs, endpoints, functions, tables and buckets with their item/object counts
    canary   per-version requests, errors and p50/p99 of the canary from Envoy's stats; `--verify N` sends N
             requests to meshUrl and checks the split against the configured weight (99.9% binomial interval)
    trace    an order's trace as a waterfall (`trace <trace id | order id>`), or the recent order traces
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from infra.config import PROJECT_DIR, ConfigError
from local.errors import DeployError
from local.rollout import add_arguments as add_rollout_arguments
from local.rollout import cmd_rollout
from local.state import OUTPUTS_FILE, pid_alive, running_twin, write_json
from local.traces.cli import add_arguments as add_trace_arguments
from local.traces.cli import cmd_trace

# Each command imports the engines it needs inside it: `status` and `canary` answer without loading Pulumi,
# boto3's engines or the Lambda runtime (a second or more on this machine).


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", default="dev", help="stack name: reads Pulumi.<stack>.yaml (default dev)")
    parser.add_argument("--state-dir", type=Path, default=PROJECT_DIR / ".local",
                        help="where endpoints, outputs, snapshots and logs live (default .local/)")
    parser.add_argument("--program", type=Path, default=None,
                        help="a Pulumi program file to run instead of __main__.py (tests use small ones)")
    parser.add_argument("--config-dir", type=Path, default=PROJECT_DIR,
                        help="folder holding Pulumi.yaml and Pulumi.<stack>.yaml (default: this checkout)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="deploy the stack locally and run it until Ctrl-C")
    _common(up)
    up.add_argument("--port", type=int, default=3000, help="API gateway port on 127.0.0.1 (0: a free port)")
    up.add_argument("--aws-port", type=int, default=5000, help="moto server port on 127.0.0.1 (0: a free port)")
    up.add_argument("--strict-parameters", action="store_true",
                    help="also validate query/path values against their schemas (API Gateway only checks presence)")
    up.add_argument("--max-workers", type=int, default=4, help="worker processes per function at most")
    up.add_argument("--no-fork-server", action="store_true",
                    help="start each Lambda worker as a fresh interpreter (slower) instead of forking a preloaded one")
    up.add_argument("--max-replicas", type=int, default=0,
                    help="processes per Deployment at most, for small machines (default 0: the graph's replicas)")
    up.add_argument("--retry-delays", default="1,2", help="seconds between async retries (AWS: about 60,120)")
    up.add_argument("--no-watch", action="store_true", help="do not re-read the stack file when it changes")
    plan = sub.add_parser("plan", help="what the twin does with each resource")
    _common(plan)
    plan.add_argument("--json", action="store_true")
    outputs = sub.add_parser("outputs", help="the stack's exports resolved against the twin")
    _common(outputs)
    status = sub.add_parser("status", help="what runs and what it holds")
    _common(status)
    status.add_argument("--json", action="store_true")
    canary = sub.add_parser("canary", help="per-version requests, errors and latency of the running twin's canary")
    canary.add_argument("--state-dir", type=Path, default=PROJECT_DIR / ".local",
                        help="the running twin's state folder (default .local/)")
    canary.add_argument("--verify", type=int, metavar="N", default=None,
                        help="send N requests to meshUrl/version, print the split and check it against the weight")
    canary.add_argument("--json", action="store_true")
    rollout = sub.add_parser("rollout", help="walk canaryWeight through --steps on the running twin, each step "
                                             "judged from Envoy's stats; rolls back to 0 when v2 is unhealthy")
    add_rollout_arguments(rollout)
    trace = sub.add_parser("trace", help="an order's trace as a waterfall (by trace id or order id), or the list of "
                                         "recent order traces")
    add_trace_arguments(trace)
    return parser


def _process_started() -> float:
    import psutil

    return float(psutil.Process().create_time())


def cmd_up(args: argparse.Namespace) -> int:
    from local.processes import LogSink
    from local.twin import Options, Twin

    args.state_dir.mkdir(parents=True, exist_ok=True)
    sink = LogSink(sys.stdout, args.state_dir / "twin.log")
    options = Options(stack=args.stack, state_dir=args.state_dir.resolve(), port=args.port, aws_port=args.aws_port,
                      strict_parameters=args.strict_parameters, max_workers=args.max_workers,
                      fork_server=not args.no_fork_server, max_replicas=args.max_replicas,
                      retry_delays=tuple(float(x) for x in args.retry_delays.split(",") if x),
                      watch_config=not args.no_watch, started_at=_process_started(),
                      program=_program(args), config_dir=args.config_dir.resolve())
    twin = Twin(options, sink)
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        endpoints = twin.up()
    except (DeployError, ConfigError) as exc:
        sink.write("twin", f"deploy failed: {exc}")
        twin.down()
        sink.close()
        return 1
    except BaseException:
        twin.down()
        sink.close()
        raise
    width = max(len(k) for k in endpoints)
    for key, value in endpoints.items():
        sink.write("twin", f"{key:<{width}}  {value}")
    sink.write("twin", f"functions: {', '.join(twin.function_names()) or '(none)'}")
    sink.write("twin", f"ready in {twin.ready_seconds:.1f} s (Ctrl-C stops everything)")
    try:
        while not stop.wait(0.5):
            pass
    finally:
        sink.write("twin", "stopping")
        twin.down()
        sink.write("twin", "stopped")
        sink.close()
    return 0


def _program(args: argparse.Namespace) -> Any:
    from local.stack import program_file

    return program_file(args.program.resolve()) if args.program else None


def _capture(args: argparse.Namespace) -> Any:
    from local.stack import capture_stack, main_program

    return capture_stack(args.stack, args.state_dir, program=_program(args) or main_program(),
                         project_dir=args.config_dir)


def cmd_plan(args: argparse.Namespace) -> int:
    from local import registry
    from local.function_spec import check_functions

    graph = _capture(args)
    placements = registry.plan(graph)
    print(registry.plan_json(placements) if args.json else registry.format_plan(placements))
    problems = registry.check_wiring(graph)
    try:
        warnings = check_functions(graph)
    except DeployError as exc:
        problems.append(str(exc))
        warnings = []
    for text in warnings:
        print(f"warning: {text}", file=sys.stderr)
    for text in problems:
        print(f"error: {text}", file=sys.stderr)
    return 1 if problems else 0


def cmd_outputs(args: argparse.Namespace) -> int:
    from local.facts import translate

    graph = _capture(args)
    info = running_twin(args.state_dir)
    if info is None:
        print("the twin is not running: values as in the graph (start it with `make local`)", file=sys.stderr)
        print(json.dumps(graph.exports, indent=2))
        return 0
    outputs = translate(graph.exports, info.get("translations") or {})
    write_json(args.state_dir / OUTPUTS_FILE, outputs)
    print(json.dumps(outputs, indent=2))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    info = running_twin(args.state_dir)
    if info is None:
        print(f"not running (state folder {args.state_dir})")
        data = args.state_dir / "data"
        if data.exists():
            for table in sorted((data / "tables").glob("*.json")):
                items = json.loads(table.read_text())["items"]
                print(f"  snapshot table {table.stem}: {len(items)} items")
            for bucket in sorted(p for p in (data / "buckets").glob("*") if p.is_dir()):
                print(f"  snapshot bucket {bucket.name}: {len(json.loads((bucket / 'index.json').read_text()))} "
                      "objects")
        return 3
    from local.aws import client

    endpoint, region = info["endpoints"]["awsEndpointUrl"], info["endpoints"].get("region", "eu-west-1")
    ddb, s3 = client("dynamodb", endpoint, region), client("s3", endpoint, region)
    tables = {t: ddb.scan(TableName=t, Select="COUNT")["Count"] for t in info["tables"]}
    buckets = {b: s3.list_objects_v2(Bucket=b).get("KeyCount", 0) for b in info["buckets"]}
    report = {
        "running": True, "pid": info["pid"], "stack": info["stack"],
        "uptimeSeconds": round(time.time() - info["startedAt"]), "readySeconds": info["readySeconds"],
        "endpoints": info["endpoints"],
        "functions": {n: {**f, "alive": [p for p in f["pids"] if pid_alive(p)]} for n, f in info["functions"].items()},
        "workloads": (info.get("plugins") or {}).get("services", {}).get("deployments", {}),
        "tables": tables, "buckets": buckets, "plugins": info.get("plugins") or {},
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"running: pid {report['pid']}, stack {report['stack']}, up {report['uptimeSeconds']} s "
          f"(ready in {report['readySeconds']:.1f} s)")
    for key, value in report["endpoints"].items():
        print(f"  {key}: {value}")
    print("functions:")
    for name, fn in report["functions"].items():
        print(f"  {name}: {fn['handler']} ({fn['memoryMb']} MB, {fn['timeoutSeconds']:g} s), "
              f"{len(fn['alive'])} worker(s), limit {fn.get('limit')}, {fn.get('throttles', 0)} throttled")
    print("workloads:")
    for key, wl in report["workloads"].items():
        print(f"  {key}: {wl['ready']}/{wl['replicas']} ready (graph {wl['replicasInGraph']}), pids "
              f"{', '.join(map(str, wl['pids'])) or '-'}")
    print("tables:")
    for name, count in tables.items():
        print(f"  {name}: {count} items")
    print("buckets:")
    for name, count in buckets.items():
        print(f"  {name}: {count} objects")
    for name, status in report["plugins"].items():
        print(f"{name}: {json.dumps(status)}")
    return 0


def cmd_canary(args: argparse.Namespace) -> int:
    """Per-version stats from Envoy's admin API; with --verify N, N requests and the binomial check (exit 1 if off)."""
    from local import canary

    state = canary.read_state(args.state_dir) if running_twin(args.state_dir) is not None else None
    if state is None:
        print(f"the twin's mesh is not running (state folder {args.state_dir}); start it with `make local`",
              file=sys.stderr)
        return 3
    if not state.get("canary"):
        print("the running twin has no weighted VirtualService (no canary)", file=sys.stderr)
        return 3
    if args.verify is not None:
        if args.verify < 1:
            print("error: --verify needs a positive number of requests", file=sys.stderr)
            return 2
        verdict = canary.verify(state, args.verify)
        if args.json:
            print(json.dumps({"counts": verdict.counts, "failures": verdict.failures, "weight": verdict.weight,
                              "canaryRequests": verdict.canary_requests, "interval": list(verdict.interval),
                              "consistent": verdict.consistent}, indent=2))
        else:
            print(canary.format_verdict(verdict, args.verify))
        return 0 if verdict.consistent else 1
    rows = canary.per_version_stats(state)
    print(json.dumps(rows, indent=2) if args.json else canary.format_stats(rows))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return {"up": cmd_up, "plan": cmd_plan, "outputs": cmd_outputs, "status": cmd_status,
                "canary": cmd_canary, "rollout": cmd_rollout, "trace": cmd_trace}[args.command](args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
