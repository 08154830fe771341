"""Minting shopper proofs as a shop's back end does, with PyJWT."""

from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.gateway import StorefrontKey


def mint(
    key: Any,
    audience: str,
    sub: str,
    now: datetime,
    *,
    algorithm: str = "HS256",
    lifetime: timedelta = timedelta(minutes=15),
    **claims: Any,
) -> str:
    """A proof for ``sub`` (e.g. ``email:ann@example.com``) issued at ``now``."""
    payload = {
        "sub": sub,
        "aud": audience,
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
    }
    return jwt.encode({**payload, **claims}, key, algorithm=algorithm)


def p256_key_pair() -> tuple[ec.EllipticCurvePrivateKey, str]:
    """A private key for the shop and the public key's PEM for the gateway."""
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, pem.decode()


_KEY_TYPES = {"EMAIL": "email", "CUSTOMER_ID": "customerId", "LOYALTY_CARD": "loyaltyCard", "PHONE": "phone"}


def proof_for(key: StorefrontKey, kind: str, value: str, now: datetime) -> dict[str, str]:
    """The ``Shopper-Proof`` header proving the identity ``kind``/``value`` (GraphQL's enum names);
    none for an anonymous id, which a storefront key addresses without one."""
    if kind == "ANONYMOUS_ID":
        return {}
    assert key.secret is not None, "a key checking proofs with the shop's public key"
    return {"shopper-proof": mint(key.secret, key.key_id, f"{_KEY_TYPES[kind]}:{value}", now)}
