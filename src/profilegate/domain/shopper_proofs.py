"""Shopper proofs: short-lived tokens the shop's back end signs to say which shopper a
storefront request acts for (docs/access.md).

A proof is a JWT (RFC 7519) signed either with the proof secret the gateway holds for the
storefront key (HS256) or with the shop's own private key, whose public half the key is
configured with (RS256, ES256 or EdDSA, chosen by the public key's type). The algorithm is
pinned per key: a token naming any other algorithm (``none`` included) is refused before its
signature is looked at, so a public key can never be used as an HMAC secret.
"""

import base64
import functools
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from profilegate.domain.errors import InvalidInput
from profilegate.domain.identities import Identity, IdentityType, normalise_identity

HEADER_NAME = "Shopper-Proof"  # the request header that carries a proof
SECRET_ALGORITHM = "HS256"
MAX_LIFETIME_SECONDS = 3600  # exp - iat; a proof is minted per page or API call, not per session
LEEWAY_SECONDS = 60  # the clock skew tolerated between the shop's back end and the gateway
MAX_EXTRA_IDENTITIES = 10
MAX_PROOF_BYTES = 4096
MAX_PUBLIC_KEY_BYTES = 8192
_KNOWN_TYPES = {kind.value: kind for kind in IdentityType if kind is not IdentityType.ANONYMOUS_ID}


@dataclass(frozen=True)
class ProofKey:
    """How a storefront key's proofs are checked: its HS256 secret or the shop's public key."""

    audience: str  # the key's id: a proof for one key is no proof for another
    secret: str | None = None
    public_key_pem: str | None = None

    @property
    def algorithm(self) -> str | None:
        if self.secret is not None:
            return SECRET_ALGORITHM
        if self.public_key_pem is not None:
            return public_key_algorithm(self.public_key_pem)
        return None


@dataclass(frozen=True)
class ShopperProof:
    """A verified proof: the known identities of one shopper, until ``expires_at``."""

    identities: frozenset[Identity]
    expires_at: datetime

    def proves(self, identity: Identity) -> bool:
        return identity in self.identities


@dataclass(frozen=True)
class ProofRefused:
    """A proof was sent but does not hold; ``reason`` says why, in words a shop engineer acts on."""

    reason: str


def new_proof_secret() -> str:
    """32 random bytes, base64url without padding: the HS256 secret of one storefront key."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def verify_proof(token: str, key: ProofKey, now: datetime) -> ShopperProof | ProofRefused:
    """Check ``token`` against ``key`` at ``now``; never raises for a bad token."""
    expected = key.algorithm
    if expected is None:
        return ProofRefused(
            "this storefront key has no proof secret or public key; create a new storefront key"
        )
    if len(token) > MAX_PROOF_BYTES:
        return ProofRefused(f"the shopper proof is longer than {MAX_PROOF_BYTES} characters")
    try:
        algorithm = jwt.get_unverified_header(token).get("alg")
    except jwt.InvalidTokenError:
        return ProofRefused("the shopper proof is not a JWT (header.payload.signature)")
    if algorithm != expected:
        return ProofRefused(
            f"the shopper proof is signed with {algorithm!r}; this key accepts only {expected}"
        )
    try:
        claims = _decode(token, key, expected, now)
    except jwt.ExpiredSignatureError:
        return ProofRefused("the shopper proof has expired; mint a new one")
    except jwt.InvalidSignatureError:
        return ProofRefused(f"the shopper proof's signature does not verify with this key's {_signer(key)}")
    except jwt.InvalidAudienceError:
        return ProofRefused(f"the shopper proof's aud is not this key's id {key.audience!r}")
    except jwt.MissingRequiredClaimError as error:
        return ProofRefused(f"the shopper proof has no {error.claim!r} claim")
    except _TooLong as error:
        return ProofRefused(
            f"the shopper proof lives {error.seconds:.0f} s (exp - iat); at most {MAX_LIFETIME_SECONDS}"
        )
    except jwt.ImmatureSignatureError:
        return ProofRefused(
            "the shopper proof was issued in the future (iat or nbf); check the back end's clock"
        )
    except jwt.InvalidTokenError:
        return ProofRefused("the shopper proof is not a valid JWT")
    return _shopper(claims)


def _decode(token: str, key: ProofKey, algorithm: str, now: datetime) -> dict[str, Any]:
    verifying_key: Any = key.secret if key.secret is not None else _public_key(key.public_key_pem or "")
    claims: dict[str, Any] = jwt.decode(
        token,
        verifying_key,
        algorithms=[algorithm],
        audience=key.audience,
        options={
            "require": ["exp", "iat", "sub", "aud"],
            "verify_exp": False,
            "verify_iat": False,
            "verify_nbf": False,
        },
    )
    _check_instants(claims, now)
    return claims


def _check_instants(claims: Mapping[str, Any], now: datetime) -> None:
    """Against the gateway's ``now`` (one per request), not the process clock PyJWT would read."""
    exp, iat = claims["exp"], claims["iat"]
    if not isinstance(exp, int | float) or not isinstance(iat, int | float):
        raise jwt.InvalidTokenError("exp and iat must be numbers")
    if exp + LEEWAY_SECONDS <= now.timestamp():
        raise jwt.ExpiredSignatureError
    nbf = claims.get("nbf", iat)
    if not isinstance(nbf, int | float):
        raise jwt.InvalidTokenError("nbf must be a number")
    if max(iat, nbf) - LEEWAY_SECONDS > now.timestamp():
        raise jwt.ImmatureSignatureError
    if exp - iat > MAX_LIFETIME_SECONDS:
        raise _TooLong(exp - iat)


class _TooLong(jwt.InvalidTokenError):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"{seconds:.0f}")
        self.seconds = seconds


def _shopper(claims: Mapping[str, Any]) -> ShopperProof | ProofRefused:
    extra = claims.get("identities", [])
    if not isinstance(extra, list) or len(extra) > MAX_EXTRA_IDENTITIES:
        return ProofRefused(
            f"the shopper proof's identities must be a list of at most {MAX_EXTRA_IDENTITIES}"
        )
    found: set[Identity] = set()
    for index, written in enumerate([claims["sub"], *extra]):
        identity = _identity(written)
        if identity is None:
            claim = "sub" if index == 0 else f"identities[{index - 1}]"
            return ProofRefused(
                f"the shopper proof's {claim} is not a known identity such as "
                "email:ann@example.com, customerId:C-4711, phone:+4930123456 or loyaltyCard:LC-1"
            )
        found.add(identity)
    return ShopperProof(identities=frozenset(found), expires_at=datetime.fromtimestamp(claims["exp"], UTC))


def _identity(written: object) -> Identity | None:
    if not isinstance(written, str) or ":" not in written:
        return None
    kind, value = written.split(":", 1)
    if kind not in _KNOWN_TYPES:
        return None
    try:
        return normalise_identity(_KNOWN_TYPES[kind], value)
    except InvalidInput:
        return None


def _signer(key: ProofKey) -> str:
    return "proof secret" if key.secret is not None else "public key"


def check_public_key(pem: str, field: str = "proofPublicKey") -> str:
    """The PEM of an RSA (2048 bits or more), P-256 or Ed25519 public key, as given."""
    if len(pem) > MAX_PUBLIC_KEY_BYTES:
        raise InvalidInput(field, f"is longer than {MAX_PUBLIC_KEY_BYTES} characters")
    try:
        public_key_algorithm(pem)
    except ValueError as error:
        raise InvalidInput(field, str(error)) from None
    return pem.strip() + "\n"


@functools.lru_cache(maxsize=256)
def public_key_algorithm(pem: str) -> str:
    key = _public_key(pem)
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise ValueError(f"an RSA key must have at least 2048 bits, not {key.key_size}")
        return "RS256"
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise ValueError(f"an EC key must be on P-256 (secp256r1), not {key.curve.name}")
        return "ES256"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "EdDSA"
    raise ValueError("must be an RSA, P-256 or Ed25519 public key")


@functools.lru_cache(maxsize=256)
def _public_key(pem: str) -> Any:
    try:
        return load_pem_public_key(pem.encode())
    except (ValueError, TypeError):
        raise ValueError("is not a PEM public key (-----BEGIN PUBLIC KEY-----)") from None
