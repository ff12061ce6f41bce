"""The spans the twin's collector received, kept in the state folder as JSON lines (`spans.jsonl`).

A file, not the collector's memory, because its readers are other processes (`python -m local trace`) as well as
the page, and a trace stays readable after the twin stops. It is bounded: past `MAX_SPANS` lines the oldest half
is dropped (rewritten atomically), so a long benchmark never fills the disk.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SPANS_FILE = "spans.jsonl"
MAX_SPANS = 20_000


@dataclass(frozen=True, kw_only=True)
class SpanRecord:
    """One finished span as the waterfall needs it (ids in lower-case hex, times in Unix nanoseconds)."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    service: str
    kind: str
    start_ns: int
    end_ns: int
    error: bool = False
    attributes: Mapping[str, Any] = field(default_factory=dict)

    @property
    def duration_ms(self) -> float:
        return max(0, self.end_ns - self.start_ns) / 1e6

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "attributes": dict(self.attributes)}, separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str) -> SpanRecord:
        return cls(**json.loads(line))


class SpanStore:
    """Appends spans to the state folder's file; safe for the collector's concurrent request threads."""

    def __init__(self, state_dir: Path, *, max_spans: int = MAX_SPANS) -> None:
        self.path = state_dir / SPANS_FILE
        self.max_spans = max_spans
        self._lock = threading.Lock()
        self._lines = self._count()
        self.received = 0

    def _count(self) -> int:
        if not self.path.exists():
            return 0
        with self.path.open("rb") as f:
            return sum(1 for _ in f)

    def add(self, spans: Iterable[SpanRecord]) -> int:
        lines = [span.to_json() + "\n" for span in spans]
        if not lines:
            return 0
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                f.writelines(lines)
            self._lines += len(lines)
            self.received += len(lines)
            if self._lines > self.max_spans:
                self._compact()
        return len(lines)

    def _compact(self) -> None:
        keep = self.path.read_text(encoding="utf-8").splitlines(keepends=True)[-(self.max_spans // 2):]
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("".join(keep), encoding="utf-8")
        os.replace(tmp, self.path)
        self._lines = len(keep)


@dataclass
class _Parsed:
    inode: int
    offset: int
    """Bytes parsed so far: the file only grows between compactions (which replace it: a new inode)."""
    spans: list[SpanRecord]


_parsed: dict[Path, _Parsed] = {}
_parse_lock = threading.Lock()


def read_spans(state_dir: Path) -> list[SpanRecord]:
    """Every span in the state folder's file. The page asks every second while spans keep arriving, so only the
    lines appended since the last read are parsed; a line still being written is left for the next read."""
    path = state_dir / SPANS_FILE
    with _parse_lock:
        try:
            with path.open("rb") as f:
                inode = os.fstat(f.fileno()).st_ino
                known = _parsed.get(path)
                if known is None or known.inode != inode or os.fstat(f.fileno()).st_size < known.offset:
                    known = _parsed[path] = _Parsed(inode=inode, offset=0, spans=[])
                f.seek(known.offset)
                chunk = f.read()
        except FileNotFoundError:
            _parsed.pop(path, None)
            return []
        complete = chunk[:chunk.rfind(b"\n") + 1]
        known.offset += len(complete)
        fresh = []
        for line in complete.decode("utf-8", errors="replace").splitlines():
            try:
                fresh.append(SpanRecord.from_json(line))
            except (ValueError, TypeError):
                continue  # not a span line (a hand-edited file): skipped, as everything the reader cannot use
        known.spans = known.spans + fresh  # a new list: callers may hold the previous one
        return known.spans
