"""`python -m local trace [ID]`: an order's waterfall (ID = trace id or order id), or the recent order traces.

Reads the state folder's spans file (`local.traces.store`), so it works while the twin runs and after it stopped.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from infra.config import PROJECT_DIR
from local.traces.waterfall import find_trace, format_list, format_waterfall, recent_orders, waterfall


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("id", nargs="?", default=None, help="a trace id (32 hex digits) or an order id")
    parser.add_argument("--state-dir", type=Path, default=PROJECT_DIR / ".local",
                        help="the twin's state folder (default .local/)")
    parser.add_argument("--limit", type=int, default=10, help="how many recent order traces to list (default 10)")
    parser.add_argument("--json", action="store_true")


def cmd_trace(args: argparse.Namespace) -> int:
    if args.id is None:
        traces = recent_orders(args.state_dir, limit=args.limit)
        print(json.dumps([dataclasses.asdict(t) for t in traces], indent=2) if args.json else format_list(traces))
        return 0
    found = find_trace(args.state_dir, args.id)
    if found is None:
        print(f"no trace {args.id!r} in {args.state_dir}: give a trace id or an order id "
              "(`python -m local trace` lists the recent ones)", file=sys.stderr)
        return 1
    trace_id, spans = found
    rows = waterfall(spans)
    print(json.dumps({"traceId": trace_id, "spans": [dataclasses.asdict(r) for r in rows]}, indent=2) if args.json
          else format_waterfall(trace_id, rows))
    return 0
