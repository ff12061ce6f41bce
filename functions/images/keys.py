"""Where the pipeline's objects live in the bucket: the prefixes and the upload -> derivative key mapping.

Pure stdlib on purpose: the Lambda code and the Pulumi program (bucket policy statements, the notification's
`filter_prefix`) both import it, and the program's venv holds only requirements.txt (no Pillow, no Powertools).
"""

from __future__ import annotations

from dataclasses import dataclass

ORIGINAL_PREFIX = "original/"
THUMBNAIL_PREFIX = "thumbnails/"
MEDIUM_PREFIX = "medium/"


@dataclass(frozen=True, kw_only=True)
class DerivativeKeys:
    thumbnail: str
    medium: str


def derivative_keys(key: str) -> DerivativeKeys | None:
    """`original/a/b.png` -> `thumbnails/a/b.jpg` and `medium/a/b.jpg`; None for keys we must not process."""
    if not key.startswith(ORIGINAL_PREFIX) or key.endswith("/"):
        return None  # outside the trigger's prefix (defensive), or a "folder" placeholder object
    rest = key[len(ORIGINAL_PREFIX) :]
    folder, _, name = rest.rpartition("/")
    stem, dot, _ = name.rpartition(".")
    base = stem if dot and stem else name
    path = f"{folder}/{base}.jpg" if folder else f"{base}.jpg"
    return DerivativeKeys(thumbnail=THUMBNAIL_PREFIX + path, medium=MEDIUM_PREFIX + path)
