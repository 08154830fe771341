"""API key tokens: ``pgk_<id>_<secret>``, and checking a secret against its stored hash."""

import secrets

import pytest

from profilegate.domain.errors import InvalidInput
from profilegate.domain.keys import check_key_name, format_key, hash_secret, parse_key, secret_matches


@pytest.mark.parametrize(
    ("key_id", "secret"),
    [
        ("a1b2c3d4e5f60718", "00ff" * 12),
        ("x", "y"),
        (secrets.token_hex(8), secrets.token_hex(24)),
    ],
)
def test_format_and_parse_round_trip(key_id: str, secret: str) -> None:
    token = format_key(key_id, secret)

    assert token == f"pgk_{key_id}_{secret}"
    assert parse_key(token) == (key_id, secret)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "pgk",
        "pgk_",
        "pgk__",
        "pgk_id",
        "pgk_id_",
        "pgk__secret",
        "pgk_id_secret_extra",
        "PGK_id_secret",
        "abc_id_secret",
        "id_secret",
        "Bearer pgk_id_secret",
        "test-admin-key",
    ],
)
def test_malformed_tokens_parse_to_none(token: str) -> None:
    assert parse_key(token) is None


def test_secret_matches_only_its_own_hash() -> None:
    secret = secrets.token_hex(24)
    stored = hash_secret(secret)

    assert stored != secret
    assert len(stored) == 64
    assert secret_matches(secret, stored)
    assert not secret_matches(secret + "0", stored)
    assert not secret_matches(secret.upper(), stored)
    assert not secret_matches("", stored)
    assert not secret_matches(secret, hash_secret("other"))


@pytest.mark.parametrize("name", ["shop-web", "Partner: Acme GmbH", "ops@example.com", "a" * 80])
def test_valid_key_names(name: str) -> None:
    assert check_key_name(name) == name


@pytest.mark.parametrize("name", ["", "a" * 81, "shop/web", "shop-web\n", "tab\there"])
def test_invalid_key_names(name: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        check_key_name(name)

    assert raised.value.field == "name"
