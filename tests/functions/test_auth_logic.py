"""Password hashing and JWT issue/verification as pure functions (no AWS)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from functions.auth import passwords, tokens
from functions.auth.errors import InvalidToken, WeakSigningKey
from functions.auth.tokens import Identity, bearer_token, issue_token, verify_token
from tests.functions.shop_support import SIGNING_KEY

ALICE = Identity(user_id="u-1", username="alice")


def test_hash_verifies_the_right_password_only() -> None:
    stored = passwords.hash_password("correct horse battery")

    assert passwords.verify_password("correct horse battery", stored)
    assert not passwords.verify_password("correct horse batterY", stored)


def test_same_password_gets_a_different_salt_each_time() -> None:
    assert passwords.hash_password("same-password") != passwords.hash_password("same-password")


def test_verification_uses_the_parameters_stored_with_the_hash() -> None:
    # A hash made with other (older, cheaper) parameters still verifies: they travel with it.
    salt = b"0123456789abcdef"
    digest = hashlib.scrypt(b"old-password", salt=salt, n=2**10, r=8, p=1, dklen=32)
    stored = f"scrypt$1024$8$1${passwords._b64(salt)}${passwords._b64(digest)}"

    assert passwords.verify_password("old-password", stored)
    assert not passwords.verify_password("other-password", stored)


@pytest.mark.parametrize("stored", ["", "plain-text", "bcrypt$1$2$3$abc$def", "scrypt$x$8$1$abc$def", "scrypt$1$2"])
def test_malformed_stored_hash_never_matches(stored: str) -> None:
    assert not passwords.verify_password("anything", stored)


def test_token_round_trip_carries_the_identity() -> None:
    token = issue_token(ALICE, key=SIGNING_KEY, ttl_seconds=300)

    assert verify_token(token, key=SIGNING_KEY) == ALICE


def test_token_not_yet_valid_is_rejected() -> None:
    future = datetime.now(UTC) + timedelta(minutes=10)
    token = issue_token(ALICE, key=SIGNING_KEY, ttl_seconds=300, now=future)

    with pytest.raises(InvalidToken):
        verify_token(token, key=SIGNING_KEY)


def test_token_expired_within_the_leeway_is_still_accepted() -> None:
    issued = datetime.now(UTC) - timedelta(seconds=300 + tokens.LEEWAY_SECONDS - 2)
    token = issue_token(ALICE, key=SIGNING_KEY, ttl_seconds=300, now=issued)

    assert verify_token(token, key=SIGNING_KEY) == ALICE


def test_short_signing_keys_are_refused_for_issue_and_verify() -> None:
    with pytest.raises(WeakSigningKey):
        issue_token(ALICE, key="short", ttl_seconds=300)
    with pytest.raises(WeakSigningKey):
        verify_token("a.b.c", key="short")


@pytest.mark.parametrize(
    ("header", "expected"),
    [("Bearer abc.def.ghi", "abc.def.ghi"), ("bearer  abc.def.ghi ", "abc.def.ghi"), ("BEARER x", "x")],
)
def test_bearer_token_extracts_the_token(header: str, expected: str) -> None:
    assert bearer_token(header) == expected


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Token abc", "Bearer a b"])
def test_bearer_token_rejects_other_shapes(header: str | None) -> None:
    with pytest.raises(InvalidToken):
        bearer_token(header)
