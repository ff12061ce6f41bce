"""The one reader of the twin's traces: `python -m local trace` and the live page both call it.

A trace is found by its id or by an order id (the order Lambda puts `order.id` on its span). A waterfall is its
spans as a tree (each under its parent, siblings by start time), each with its start offset from the trace's
first span and its duration. A span whose parent never arrived (a sender that is down, or still flushing) is shown
as a root rather than dropped.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local.traces.store import SpanRecord, read_spans

TRACE_ID = re.compile(r"[0-9a-f]{32}")
ORDER_ROUTE = "POST /orders"


@dataclass(frozen=True, kw_only=True)
class WaterfallRow:
    depth: int
    name: str
    service: str
    offset_ms: float
    duration_ms: float
    span_id: str
    parent_id: str | None
    error: bool


@dataclass(frozen=True, kw_only=True)
class TraceSummary:
    trace_id: str
    order_id: str | None
    name: str
    started_ns: int
    duration_ms: float
    spans: int
    services: tuple[str, ...]
    error: bool


def by_trace(spans: Sequence[SpanRecord]) -> dict[str, list[SpanRecord]]:
    grouped: dict[str, list[SpanRecord]] = defaultdict(list)
    for span in spans:
        grouped[span.trace_id].append(span)
    return grouped


def order_id_of(spans: Sequence[SpanRecord]) -> str | None:
    return next((str(s.attributes["order.id"]) for s in spans if s.attributes.get("order.id")), None)


def waterfall(spans: Sequence[SpanRecord]) -> list[WaterfallRow]:
    """The trace's spans depth-first from its roots, children in start order."""
    if not spans:
        return []
    ids = {s.span_id for s in spans}
    children: dict[str | None, list[SpanRecord]] = defaultdict(list)
    for span in spans:
        children[span.parent_id if span.parent_id in ids else None].append(span)
    origin = min(s.start_ns for s in spans)
    rows: list[WaterfallRow] = []

    def visit(span: SpanRecord, depth: int) -> None:
        rows.append(WaterfallRow(depth=depth, name=span.name, service=span.service,
                                 offset_ms=(span.start_ns - origin) / 1e6, duration_ms=span.duration_ms,
                                 span_id=span.span_id, parent_id=span.parent_id, error=span.error))
        for child in sorted(children.get(span.span_id, []), key=lambda s: s.start_ns):
            visit(child, depth + 1)

    for root in sorted(children[None], key=lambda s: s.start_ns):
        visit(root, 0)
    return rows


def summary(trace_id: str, spans: Sequence[SpanRecord]) -> TraceSummary:
    first = min(spans, key=lambda s: s.start_ns)
    return TraceSummary(trace_id=trace_id, order_id=order_id_of(spans), name=first.name, started_ns=first.start_ns,
                        duration_ms=(max(s.end_ns for s in spans) - first.start_ns) / 1e6, spans=len(spans),
                        services=tuple(dict.fromkeys(s.service for s in sorted(spans, key=lambda s: s.start_ns))),
                        error=any(s.error for s in spans))


def recent_orders(state_dir: Path, limit: int = 10) -> list[TraceSummary]:
    """The newest traces that placed an order (or tried to), newest first."""
    found = [summary(tid, spans) for tid, spans in by_trace(read_spans(state_dir)).items()
             if order_id_of(spans) or any(s.name == ORDER_ROUTE for s in spans)]
    return sorted(found, key=lambda t: t.started_ns, reverse=True)[:limit]


def find_trace(state_dir: Path, ident: str) -> tuple[str, list[SpanRecord]] | None:
    """The trace with this trace id, or the one whose spans carry this order id; None when neither is stored."""
    grouped = by_trace(read_spans(state_dir))
    wanted = ident.strip().lower()
    if TRACE_ID.fullmatch(wanted) and wanted in grouped:
        return wanted, grouped[wanted]
    for trace_id, spans in grouped.items():
        if order_id_of(spans) == ident.strip():
            return trace_id, spans
    return None


def recent_waterfalls(state_dir: Path, limit: int = 5) -> list[dict[str, Any]]:
    """The newest order traces with their waterfalls, as the page draws them (JSON-ready)."""
    grouped = by_trace(read_spans(state_dir))
    out = []
    for t in recent_orders(state_dir, limit=limit):
        out.append({"traceId": t.trace_id, "orderId": t.order_id, "name": t.name, "startedAt": t.started_ns / 1e9,
                    "durationMs": round(t.duration_ms, 2), "spans": t.spans, "services": list(t.services),
                    "error": t.error,
                    "rows": [{"depth": r.depth, "name": r.name, "service": r.service, "spanId": r.span_id,
                              "parentId": r.parent_id, "offsetMs": round(r.offset_ms, 2),
                              "durationMs": round(r.duration_ms, 2), "error": r.error}
                             for r in waterfall(grouped[t.trace_id])]})
    return out


def format_waterfall(trace_id: str, rows: Sequence[WaterfallRow]) -> str:
    """Plain text: one line per span, indented under its parent, with its service, offset and duration."""
    width = max((2 * r.depth + len(r.name) for r in rows), default=10) + 2
    service_width = max((len(r.service) for r in rows), default=7) + 2
    lines = [f"trace {trace_id}", f"{'span':<{width}}{'service':<{service_width}}{'start':>10}{'duration':>11}"]
    for r in rows:
        label = "  " * r.depth + r.name + (" !" if r.error else "")
        lines.append(f"{label:<{width}}{r.service:<{service_width}}{r.offset_ms:>8.1f}ms{r.duration_ms:>9.1f}ms")
    return "\n".join(lines)


def format_list(traces: Sequence[TraceSummary]) -> str:
    if not traces:
        return "no order traces yet (place an order through the gateway, then run this again)"
    lines = [f"{'trace id':<34}{'order id':<38}{'spans':>6}{'duration':>11}  services"]
    for t in traces:
        lines.append(f"{t.trace_id:<34}{(t.order_id or '-'):<38}{t.spans:>6}{t.duration_ms:>9.1f}ms  "
                     + " > ".join(t.services) + ("  (error)" if t.error else ""))
    return "\n".join(lines)
