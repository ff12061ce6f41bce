"""What the auth logic needs from the outside world (implemented by `adapters.py`, or fakes in tests)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, kw_only=True)
class UserRecord:
    """A stored user. `user_id` is stable and opaque: it is what tokens and orders refer to."""

    username: str
    user_id: str
    password_hash: str
    created_at: str


class UserRepository(Protocol):
    def add(self, user: UserRecord) -> None:
        """Store `user` unless the username exists (raise `UsernameTaken` then); atomic."""
        ...

    def get(self, username: str) -> UserRecord | None:
        """The user called `username`, if any."""
        ...
