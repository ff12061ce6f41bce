"""Registration and token issue: plain functions over models and a user repository."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from functions.auth.errors import BadCredentials, UsernameConflict, UsernameTaken
from functions.auth.models import RegisteredUser, RegisterRequest, TokenRequest, TokenResponse
from functions.auth.passwords import dummy_hash, hash_password, verify_password
from functions.auth.ports import UserRecord, UserRepository
from functions.auth.tokens import Identity, issue_token


def register(request: RegisterRequest, *, users: UserRepository, now: datetime | None = None) -> RegisteredUser:
    """Create a user with a freshly hashed password; 409 if the username is taken."""
    record = UserRecord(
        username=request.username,
        user_id=str(uuid.uuid4()),
        password_hash=hash_password(request.password),
        created_at=(now or datetime.now(UTC)).isoformat(),
    )
    try:
        users.add(record)
    except UsernameTaken:
        raise UsernameConflict("username is already taken", field="username") from None
    return RegisteredUser(username=record.username)


def authenticate(request: TokenRequest, *, users: UserRepository) -> Identity:
    """The identity of the user if the password matches; the same scrypt work is done whether or not they exist."""
    user = users.get(request.username)
    stored = user.password_hash if user is not None else dummy_hash()
    matches = verify_password(request.password, stored)
    if user is None or not matches:
        # One message for both cases: the answer must not tell which usernames exist.
        raise BadCredentials("invalid username or password")
    return Identity(user_id=user.user_id, username=user.username)


def issue(
    request: TokenRequest,
    *,
    users: UserRepository,
    signing_key: Callable[[], str],
    ttl_seconds: int,
    now: datetime | None = None,
) -> TokenResponse:
    """A bearer token for valid credentials; `signing_key` is only fetched once the password checked out."""
    identity = authenticate(request, users=users)
    token = issue_token(identity, key=signing_key(), ttl_seconds=ttl_seconds, now=now)
    return TokenResponse(access_token=token, expires_in=ttl_seconds)
