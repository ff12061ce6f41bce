"""What the image logic needs from the outside world (S3/DynamoDB adapters in `adapters.py`, fakes in tests)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, kw_only=True)
class ObjectInfo:
    """Size and ETag (without quotes) of the current version of an object."""

    size: int
    etag: str


@dataclass(frozen=True, kw_only=True)
class StoredRecord:
    """What ordering needs from an existing metadata item."""

    sequencer: str
    etag: str
    status: str


class ObjectStore(Protocol):
    def head(self, key: str) -> ObjectInfo:
        """Size and ETag of `key`; raise `ObjectChanged` if it no longer exists."""
        ...

    def get(self, key: str, *, etag: str) -> bytes:
        """The bytes of `key` only if its ETag is still `etag`; otherwise raise `ObjectChanged`."""
        ...

    def put_jpeg(self, key: str, data: bytes) -> None:
        """Write `data` at `key` with `Content-Type: image/jpeg` (overwriting: same input, same bytes)."""
        ...


class MetadataRepository(Protocol):
    def get(self, key: str) -> StoredRecord | None:
        """The stored record for original `key` (strongly consistent), or None."""
        ...

    def save(self, item: dict[str, Any]) -> bool:
        """Store `item` unless a record with a greater `sequencer` exists; False if it was not stored (stale)."""
        ...
