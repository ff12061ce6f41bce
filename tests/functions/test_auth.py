"""Auth functions against moto (users table from `infra.tables.USERS`, the JWT key in Secrets Manager)."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import boto3
import jwt
import pytest

from functions.auth import AUDIENCE, ISSUER, handlers, logic
from infra.tables import USERS
from tests.functions import shop_support as shop
from tests.support.dynamo import create_table
from tests.support.events import api_event, response_headers, response_json

USERS_TABLE = "users-test"
TTL = 600


@pytest.fixture
def auth(aws_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
    """Users table and signing secret in an empty moto account, and the functions' env pointing at them."""
    ddb = boto3.client("dynamodb")
    create_table(ddb, USERS, USERS_TABLE)
    arn = boto3.client("secretsmanager").create_secret(Name="jwt-signing-key", SecretString=shop.SIGNING_KEY)["ARN"]
    monkeypatch.setenv("USERS_TABLE_NAME", USERS_TABLE)
    monkeypatch.setenv("JWT_SECRET_ARN", arn)
    monkeypatch.setenv("TOKEN_TTL_SECONDS", str(TTL))
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "auth")
    shop.reset_function_caches()
    yield SimpleNamespace(ddb=ddb, secret_arn=arn)
    shop.reset_function_caches()


def register(body: Any) -> dict[str, Any]:
    return handlers.register(api_event("POST", "/auth/register", body=body), shop.context("register"))


def token(body: Any) -> dict[str, Any]:
    return handlers.token(api_event("POST", "/auth/token", body=body), shop.context("token"))


def authorize(header: str | None) -> dict[str, Any]:
    headers = {"Authorization": header} if header is not None else {}
    return handlers.authorizer(shop.authorizer_event(headers), shop.context("authorizer"))


def stored_user(ddb: Any, username: str) -> dict[str, Any] | None:
    return ddb.get_item(TableName=USERS_TABLE, Key={"username": {"S": username}}).get("Item")


def sign(claims: dict[str, Any], key: str = shop.SIGNING_KEY, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def valid_claims(**overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-123",
        "username": "alice",
        "iat": now,
        "exp": now + timedelta(minutes=5),
    }
    claims.update(overrides)
    return claims


# ---- register ------------------------------------------------------------------------------------------------


def test_register_returns_201_and_stores_a_scrypt_hash_not_the_password(auth: SimpleNamespace) -> None:
    response = register({"username": "alice.b-1", "password": "correct horse"})

    assert response["statusCode"] == 201
    assert response_json(response) == {"username": "alice.b-1"}
    item = stored_user(auth.ddb, "alice.b-1")
    assert item is not None
    assert item["passwordHash"]["S"].startswith("scrypt$16384$8$1$")
    assert "correct horse" not in json.dumps(item)
    assert item["userId"]["S"]


def test_register_taken_username_returns_409_and_keeps_the_first_password(auth: SimpleNamespace) -> None:
    assert register({"username": "bob", "password": "first-password"})["statusCode"] == 201
    first_hash = stored_user(auth.ddb, "bob")["passwordHash"]["S"]  # type: ignore[index]

    response = register({"username": "bob", "password": "second-password"})

    assert response["statusCode"] == 409
    assert response_json(response)["error"]["code"] == "USERNAME_TAKEN"
    assert stored_user(auth.ddb, "bob")["passwordHash"]["S"] == first_hash  # type: ignore[index]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "al", "password": "long-enough"}, "username"),
        ({"username": "x" * 65, "password": "long-enough"}, "username"),
        ({"username": "has space", "password": "long-enough"}, "username"),
        ({"username": "semi;colon", "password": "long-enough"}, "username"),
        ({"username": "carol", "password": "short"}, "password"),
        ({"username": "carol", "password": "p" * 129}, "password"),
        ({"username": "carol"}, "password"),
        ({"username": "carol", "password": "long-enough", "admin": True}, "admin"),
        ({"username": "carol", "password": 12345678}, "password"),
    ],
)
def test_register_weak_or_malformed_input_returns_400_naming_the_field(
    auth: SimpleNamespace, body: dict[str, Any], field: str
) -> None:
    response = register(body)

    assert response["statusCode"] == 400
    error = response_json(response)["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert field in error["message"]
    assert auth.ddb.scan(TableName=USERS_TABLE)["Count"] == 0


def test_register_malformed_json_returns_400(auth: SimpleNamespace) -> None:
    response = register('{"username": "dave", ')

    assert response["statusCode"] == 400
    assert response_json(response)["error"]["code"] == "VALIDATION_ERROR"


def test_passwords_never_reach_the_logs(auth: SimpleNamespace, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "never-log-this-password"
    register({"username": "erin", "password": secret})
    register({"username": "erin", "password": secret})
    token({"username": "erin", "password": secret})
    token({"username": "erin", "password": secret + "-wrong"})

    # Every attribute of every record, the structured `extra` keys included.
    logged = json.dumps([{k: str(v) for k, v in vars(record).items()} for record in caplog.records])
    assert "erin" in logged  # the logs were captured at all
    assert secret not in logged


# ---- token ---------------------------------------------------------------------------------------------------


def test_token_for_valid_credentials_is_a_bearer_jwt_for_the_user(auth: SimpleNamespace) -> None:
    register({"username": "frank", "password": "frank-password"})
    user_id = stored_user(auth.ddb, "frank")["userId"]["S"]  # type: ignore[index]

    response = token({"username": "frank", "password": "frank-password"})

    assert response["statusCode"] == 200
    body = response_json(response)
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == TTL
    assert response_headers(response)["cache-control"] == "no-store"
    claims = jwt.decode(body["access_token"], shop.SIGNING_KEY, algorithms=["HS256"], audience=AUDIENCE)
    assert claims["iss"] == ISSUER
    assert claims["sub"] == user_id
    assert claims["username"] == "frank"
    assert claims["exp"] - claims["iat"] == TTL


def test_token_wrong_password_and_unknown_user_get_the_same_401(auth: SimpleNamespace) -> None:
    register({"username": "grace", "password": "grace-password"})

    wrong = token({"username": "grace", "password": "not-her-password"})
    unknown = token({"username": "nobody", "password": "grace-password"})

    assert wrong["statusCode"] == unknown["statusCode"] == 401
    assert response_json(wrong) == response_json(unknown)
    assert response_json(wrong)["error"]["code"] == "INVALID_CREDENTIALS"


def test_token_for_unknown_user_does_the_same_scrypt_work(
    auth: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    register({"username": "heidi", "password": "heidi-password"})
    checked: list[str] = []
    real = logic.verify_password

    def spy(password: str, encoded: str) -> bool:
        checked.append(encoded.split("$")[0])
        return real(password, encoded)

    monkeypatch.setattr(logic, "verify_password", spy)

    token({"username": "heidi", "password": "wrong-password"})
    token({"username": "nobody-at-all", "password": "wrong-password"})

    # One full scrypt verification each: a registered user's hash and the dummy one.
    assert checked == ["scrypt", "scrypt"]


def test_token_request_missing_password_returns_400(auth: SimpleNamespace) -> None:
    response = token({"username": "ivan"})

    assert response["statusCode"] == 400
    assert "password" in response_json(response)["error"]["message"]


# ---- authorizer ----------------------------------------------------------------------------------------------


def test_authorizer_allows_a_valid_token_with_the_user_id_in_context(auth: SimpleNamespace) -> None:
    register({"username": "judy", "password": "judy-password"})
    user_id = stored_user(auth.ddb, "judy")["userId"]["S"]  # type: ignore[index]
    access = response_json(token({"username": "judy", "password": "judy-password"}))["access_token"]

    policy = authorize(f"Bearer {access}")

    assert policy["principalId"] == user_id
    assert policy["context"] == {"userId": user_id, "username": "judy"}
    (statement,) = policy["policyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "execute-api:Invoke"
    # The whole API, not only GET /orders: API Gateway reuses a cached policy for every route of this token.
    assert statement["Resource"] == ["arn:aws:execute-api:eu-west-1:123456789012:abc123defg/prod/*/*"]


def test_authorizer_accepts_lowercase_header_and_scheme(auth: SimpleNamespace) -> None:
    event = shop.authorizer_event({"authorization": f"bearer {sign(valid_claims())}"})

    policy = handlers.authorizer(event, shop.context("authorizer"))

    assert policy["principalId"] == "user-123"


def _unsigned(claims: dict[str, Any]) -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj, default=str).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(None, id="no-header"),
        pytest.param("", id="empty-header"),
        pytest.param("Basic dXNlcjpwYXNz", id="basic-scheme"),
        pytest.param("Bearer", id="bearer-without-token"),
        pytest.param("Bearer not.a.jwt", id="garbage"),
        pytest.param(f"Bearer {sign(valid_claims(), key='another-key-of-sufficient-length-0123456789')}", id="bad-sig"),
        pytest.param(
            f"Bearer {sign(valid_claims(exp=datetime.now(UTC) - timedelta(minutes=1)))}",
            id="expired",
        ),
        pytest.param(f"Bearer {sign(valid_claims(aud='someone-else'))}", id="wrong-audience"),
        pytest.param(f"Bearer {sign(valid_claims(iss='evil-issuer'))}", id="wrong-issuer"),
        pytest.param(f"Bearer {sign({k: v for k, v in valid_claims().items() if k != 'sub'})}", id="no-subject"),
        pytest.param(f"Bearer {sign(valid_claims(), algorithm='HS512')}", id="other-algorithm"),
        pytest.param(
            f"Bearer {_unsigned({**valid_claims(), 'iat': 1, 'exp': 4_000_000_000})}",
            id="alg-none",
        ),
    ],
)
def test_authorizer_rejects_bad_tokens_as_unauthorized(auth: SimpleNamespace, header: str | None) -> None:
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorize(header)


@pytest.mark.filterwarnings("ignore::jwt.InsecureKeyLengthWarning")
def test_authorizer_fails_closed_when_the_signing_key_is_too_short(
    auth: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    arn = boto3.client("secretsmanager").create_secret(Name="short-key", SecretString="too-short")["ARN"]
    monkeypatch.setenv("JWT_SECRET_ARN", arn)
    shop.reset_function_caches()

    # Not "Unauthorized": a configuration error surfaces as API Gateway's 500, and nobody gets in.
    with pytest.raises(Exception) as raised:
        authorize(f"Bearer {sign(valid_claims(), key='too-short')}")
    assert str(raised.value) != "Unauthorized"


def test_authorizer_without_secret_arn_fails_naming_the_variable(
    auth: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JWT_SECRET_ARN")
    shop.reset_function_caches()

    with pytest.raises(Exception, match="JWT_SECRET_ARN"):
        authorize(f"Bearer {sign(valid_claims())}")
