"""The auth group's exceptions: what the adapters and token checks raise, and the API's own error codes
(statuses come from the shared classes in `functions.common.errors`)."""

from __future__ import annotations

from functions.common.errors import Conflict, Unauthorized


class UsernameTaken(Exception):
    """A user with this username already exists."""


class UsernameConflict(Conflict):
    code = "USERNAME_TAKEN"


class BadCredentials(Unauthorized):
    code = "INVALID_CREDENTIALS"


class InvalidToken(Exception):
    """The token is absent, malformed, badly signed, expired or meant for someone else."""


class WeakSigningKey(Exception):
    """The configured signing key is too short to be safe for HS256."""
