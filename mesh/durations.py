"""Go/protobuf duration strings, as Istio writes them (``"1h2m3.5s"``, ``"250ms"``)."""

from __future__ import annotations

import re

_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)")


def parse_duration(value: str) -> float:
    """Seconds in a Go duration string; ``ValueError`` for anything Istio's CRD validation would reject."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{value!r} is not a duration such as '2s' or '500ms'")
    pos, total = 0, 0.0
    while pos < len(value):
        match = _PART.match(value, pos)
        if match is None:
            raise ValueError(f"{value!r} is not a duration such as '2s' or '500ms'")
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    return total


def envoy_duration(value: str) -> str:
    """The protobuf JSON form Envoy reads (seconds with an ``s`` suffix, e.g. ``"0.250s"``)."""
    seconds = parse_duration(value)
    text = f"{seconds:.9f}".rstrip("0").rstrip(".")
    return f"{text}s"
