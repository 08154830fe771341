"""Shopper proofs: what holds, and every way a token is refused, with the reason it names."""

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from profilegate.domain.errors import InvalidInput
from profilegate.domain.identities import Identity, IdentityType
from profilegate.domain.shopper_proofs import (
    LEEWAY_SECONDS,
    MAX_LIFETIME_SECONDS,
    ProofKey,
    ProofRefused,
    ShopperProof,
    check_public_key,
    new_proof_secret,
    verify_proof,
)
from tests.shopper_proofs import mint, p256_key_pair

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
SECRET = new_proof_secret()
KEY = ProofKey(audience="k1", secret=SECRET)
ANNA = Identity(type=IdentityType.EMAIL, value="anna.schmidt@example.com")


def refusal(token: str, key: ProofKey = KEY, now: datetime = NOW) -> str:
    verified = verify_proof(token, key, now)
    assert isinstance(verified, ProofRefused), verified
    return verified.reason


def public_pem(private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> str:
    encoded = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return encoded.decode()


def test_a_proof_names_its_shopper_normalised_with_the_more_identities_it_lists() -> None:
    token = mint(SECRET, "k1", "email:Anna.Schmidt@Example.com", NOW, identities=["customerId:C-100234"])
    verified = verify_proof(token, KEY, NOW)
    assert isinstance(verified, ShopperProof)
    assert verified.identities == {ANNA, Identity(type=IdentityType.CUSTOMER_ID, value="C-100234")}
    assert verified.expires_at == NOW + timedelta(minutes=15)


def test_the_secret_is_32_random_bytes() -> None:
    assert len(base64.urlsafe_b64decode(SECRET + "=")) == 32
    assert new_proof_secret() != SECRET


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: "not-a-token", "not a JWT"),
        (lambda: mint(new_proof_secret(), "k1", "email:a@example.com", NOW), "signature does not verify"),
        (lambda: mint(SECRET, "k2", "email:a@example.com", NOW), "aud is not this key's id 'k1'"),
        (lambda: mint(SECRET, "k1", "email:a@example.com", NOW - timedelta(hours=1)), "has expired"),
        (
            lambda: mint(SECRET, "k1", "email:a@example.com", NOW + timedelta(minutes=5)),
            "issued in the future",
        ),
        (
            lambda: mint(SECRET, "k1", "email:a@example.com", NOW, lifetime=timedelta(hours=2)),
            f"lives 7200 s (exp - iat); at most {MAX_LIFETIME_SECONDS}",
        ),
        (
            lambda: mint(SECRET, "k1", "anonymousId:0123456789abcdefghijkl", NOW),
            "sub is not a known identity",
        ),
        (lambda: mint(SECRET, "k1", "email:not-an-address", NOW), "sub is not a known identity"),
        (
            lambda: mint(SECRET, "k1", "email:a@example.com", NOW, identities=["shoe:42"]),
            "identities[0] is not a known identity",
        ),
        (
            lambda: mint(SECRET, "k1", "email:a@example.com", NOW, identities="email:b@example.com"),
            "identities must be a list",
        ),
        (
            lambda: mint(SECRET * 2, "k1", "email:a@example.com", NOW, algorithm="HS512"),
            "signed with 'HS512'; this key accepts only HS256",
        ),
        (lambda: jwt.encode({"sub": "email:a@example.com", "aud": "k1"}, SECRET), "no 'exp' claim"),
    ],
)
def test_a_bad_proof_is_refused_naming_why(make: Callable[[], str], reason: str) -> None:
    assert reason in refusal(make())


def test_the_clock_skew_tolerated_is_bounded() -> None:
    issued = NOW + timedelta(seconds=LEEWAY_SECONDS - 1)
    assert isinstance(verify_proof(mint(SECRET, "k1", "email:a@example.com", issued), KEY, NOW), ShopperProof)
    expired = NOW - timedelta(minutes=15, seconds=LEEWAY_SECONDS - 1)
    assert isinstance(
        verify_proof(mint(SECRET, "k1", "email:a@example.com", expired), KEY, NOW), ShopperProof
    )
    gone = NOW - timedelta(minutes=15, seconds=LEEWAY_SECONDS)
    assert "has expired" in refusal(mint(SECRET, "k1", "email:a@example.com", gone))


def _unsigned(claims: dict[str, object], header: dict[str, object]) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part(header)}.{part(claims)}."


def test_alg_none_is_refused_before_any_signature_is_looked_at() -> None:
    claims = {"sub": "email:a@example.com", "aud": "k1", "iat": int(NOW.timestamp()), "exp": 4102444800}
    assert "signed with 'none'; this key accepts only HS256" in refusal(_unsigned(claims, {"alg": "none"}))


def test_a_tampered_payload_fails_its_signature() -> None:
    header, _, signature = mint(SECRET, "k1", "email:a@example.com", NOW).split(".")
    forged = _unsigned({"sub": "email:b@example.com", "aud": "k1", "iat": 0, "exp": 0}, {}).split(".")[1]
    assert "signature does not verify" in refusal(f"{header}.{forged}.{signature}")


def test_the_shops_public_key_checks_proofs_of_its_private_key() -> None:
    private, pem = p256_key_pair()
    key = ProofKey(audience="k1", public_key_pem=check_public_key(pem))
    assert key.algorithm == "ES256"
    verified = verify_proof(
        mint(private, "k1", "email:anna.schmidt@example.com", NOW, algorithm="ES256"), key, NOW
    )
    assert isinstance(verified, ShopperProof)
    assert verified.proves(ANNA)
    other, _ = p256_key_pair()
    forged = mint(other, "k1", "email:anna.schmidt@example.com", NOW, algorithm="ES256")
    assert "signature does not verify with this key's public key" in refusal(forged, key)


def test_a_public_key_is_never_taken_for_an_hmac_secret() -> None:
    """Algorithm confusion: an HS256 token signed with the public key's PEM as the secret."""
    _, pem = p256_key_pair()
    key = ProofKey(audience="k1", public_key_pem=pem)
    confused = _hs256_with(pem)  # PyJWT itself refuses to sign so; a forger need not use it
    assert "signed with 'HS256'; this key accepts only ES256" in refusal(confused, key)


def _hs256_with(secret: str) -> str:
    claims = {"sub": "email:a@example.com", "aud": "k1", "iat": int(NOW.timestamp()), "exp": 4102444800}
    signing_input = _unsigned(claims, {"alg": "HS256", "typ": "JWT"}).rstrip(".")
    digest = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(digest).decode().rstrip('=')}"


@pytest.mark.parametrize(
    ("private", "algorithm"),
    [
        (rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256"),
        (ed25519.Ed25519PrivateKey.generate(), "EdDSA"),
    ],
)
def test_rsa_and_ed25519_keys_sign_with_their_own_algorithm(
    private: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey, algorithm: str
) -> None:
    key = ProofKey(audience="k1", public_key_pem=check_public_key(public_pem(private)))
    assert key.algorithm == algorithm
    token = mint(private, "k1", "phone:+4930123456", NOW, algorithm=algorithm)
    assert isinstance(verify_proof(token, key, NOW), ShopperProof)


@pytest.mark.parametrize(
    ("pem", "message"),
    [
        ("hello", "is not a PEM public key"),
        (public_pem(ec.generate_private_key(ec.SECP384R1())), "must be on P-256"),
        (public_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)), "at least 2048 bits"),
    ],
)
def test_a_public_key_the_gateway_cannot_pin_is_refused_when_the_key_is_made(pem: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as raised:
        check_public_key(pem)
    assert raised.value.field == "proofPublicKey"


def test_a_key_without_proof_material_accepts_no_proof() -> None:
    token = mint(SECRET, "k1", "email:a@example.com", NOW)
    assert "no proof secret or public key" in refusal(token, ProofKey(audience="k1"))
