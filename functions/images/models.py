"""The shapes of the image pipeline: configuration limits, rendered derivatives, one upload and its outcome."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Caps from configuration: bytes of the upload, and decoded pixels (the decompression-bomb guard)."""

    max_bytes: int
    max_pixels: int


@dataclass(frozen=True, kw_only=True)
class Derivative:
    """One encoded JPEG and its dimensions."""

    data: bytes
    width: int
    height: int


@dataclass(frozen=True, kw_only=True)
class Rendered:
    """What one upload became: its own (oriented) dimensions and format, and both derivatives."""

    width: int
    height: int
    format: str
    thumbnail: Derivative
    medium: Derivative


class Outcome(StrEnum):
    OK = "ok"
    FAILED = "failed"
    IGNORED = "ignored"  # not under original/, or not an upload
    STALE = "stale"  # a newer version of the object exists or was already recorded
    DUPLICATE = "duplicate"  # this very event was already processed


@dataclass(frozen=True, kw_only=True)
class Result:
    """What happened to one upload; `reason`/`message` say why a file failed."""

    outcome: Outcome
    reason: str | None = None
    message: str | None = None


@dataclass(frozen=True, kw_only=True)
class Upload:
    """One `ObjectCreated` record, key already URL-decoded. `size`/`etag` are None if the event lacks them."""

    key: str
    size: int | None
    etag: str | None
    sequencer: str
