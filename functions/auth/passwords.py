"""Password hashing with scrypt (pure; no AWS).

The stored form carries its own parameters (`scrypt$n$r$p$salt$hash`, base64url without padding), so the cost can
be raised later without invalidating existing users: verification always uses the parameters it finds.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from functools import cache

SCHEME = "scrypt"
N = 2**14
R = 8
P = 1
SALT_BYTES = 16
KEY_BYTES = 32
# scrypt needs 128 * n * r bytes (16 MiB at these parameters); leave headroom for stored hashes with a larger n.
_MAXMEM = 128 * 1024 * 1024


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _derive(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=length, maxmem=_MAXMEM)


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """The encoded scrypt hash of `password` with a fresh random salt."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    digest = _derive(password, salt, N, R, P, KEY_BYTES)
    return f"{SCHEME}${N}${R}${P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether `password` matches `encoded`; a malformed stored hash never matches."""
    try:
        scheme, n, r, p, salt, digest = encoded.split("$")
        if scheme != SCHEME:
            return False
        expected = _unb64(digest)
        actual = _derive(password, _unb64(salt), int(n), int(r), int(p), len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


@cache
def dummy_hash() -> str:
    """A real hash of a random password, computed once per container.

    Verifying against it when the user does not exist costs the same scrypt work as a real check, so the answer's
    timing does not reveal which usernames are registered.
    """
    return hash_password(_b64(os.urandom(24)))
