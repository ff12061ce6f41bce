"""Why an upload is skipped or refused: the image group's exceptions (pure; no Pillow, no AWS)."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Why a file can never become derivatives. Each is permanent: retrying the same bytes cannot help."""

    EMPTY = "EMPTY"
    TOO_LARGE_BYTES = "TOO_LARGE_BYTES"
    NOT_AN_IMAGE = "NOT_AN_IMAGE"
    UNSUPPORTED = "UNSUPPORTED"
    TOO_MANY_PIXELS = "TOO_MANY_PIXELS"
    TRUNCATED = "TRUNCATED"
    CORRUPT = "CORRUPT"


class ImageRejected(Exception):
    """A permanent failure of one file, with its machine-readable `reason` and a human `message`."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


class ObjectChanged(Exception):
    """The object is no longer the version the event announced (replaced or deleted): the event is stale."""
