"""What a storefront key may do: it is public (it ships in every shopper's browser), so it acts
for its own visitor, named by an unguessable anonymous id, and for a known shopper only with a
shopper proof for them (docs/access.md).

Every refusal here is decided from the request alone, before the store is asked, so the
answer for an identity that exists is the answer for one that does not.
"""

from enum import StrEnum

from profilegate.domain.errors import InvalidInput, NotPermitted
from profilegate.domain.events import EventType, TrackedEvent
from profilegate.domain.identities import Identity, IdentityType
from profilegate.domain.refs import ProfileRef
from profilegate.domain.shopper_proofs import HEADER_NAME, ProofRefused, ShopperProof

# 22 characters of base64url hold 132 bits; a UUID v4 (36 characters) holds 122 random bits.
MIN_ANONYMOUS_ID_LENGTH = 22

# What a shopper's own browser may report; orders, returns, cancellations, store purchases,
# coupon redemptions, e-mail and call-centre events come from the shop's servers.
STOREFRONT_EVENT_TYPES = frozenset(
    {
        EventType.PAGE_VIEW,
        EventType.PRODUCT_VIEW,
        EventType.ADD_TO_CART,
        EventType.CHECKOUT_STARTED,
        EventType.NEWSLETTER_SUBSCRIBED,
        EventType.CUSTOM,
    }
)

type Proof = ShopperProof | ProofRefused | None


class Missing(StrEnum):
    """Why a storefront key was refused a known shopper: the label of the refusal metric."""

    NO_PROOF = "no_proof"
    PROOF_REFUSED = "proof_refused"
    OTHER_SHOPPER = "other_shopper"
    SERVER_ONLY = "server_only"


class ShopperNotProven(NotPermitted):
    """A storefront key asked for something only a proof (or a server key) allows."""

    def __init__(self, message: str, missing: Missing) -> None:
        super().__init__(message)
        self.missing = missing


def check_reach(ref: ProfileRef, proof: Proof, field: str = "ref") -> None:
    """Raise unless a storefront key holding ``proof`` may address ``ref``."""
    if ref.id is not None:
        raise _by_id(f"{field}.id")
    if ref.identity is not None:
        check_identity(ref.identity, proof, f"{field}.identity")


def _by_id(field: str) -> ShopperNotProven:
    return ShopperNotProven(
        f"{field}: a storefront key names its shopper by anonymousId, or by an identity its shopper "
        "proof names; not by profile id",
        Missing.SERVER_ONLY,
    )


def check_identity(identity: Identity, proof: Proof, field: str) -> None:
    if identity.type is IdentityType.ANONYMOUS_ID:
        check_anonymous_id(identity.value, f"{field}.value")
        return
    if isinstance(proof, ShopperProof) and proof.proves(identity):
        return
    raise _unproven(identity, proof, field)


def check_anonymous_id(value: str, field: str) -> None:
    if len(value) < MIN_ANONYMOUS_ID_LENGTH:
        raise InvalidInput(
            field,
            f"a storefront key's anonymous ids must be at least {MIN_ANONYMOUS_ID_LENGTH} characters of "
            "a random value, such as a UUID v4 (docs/access.md)",
        )


def _unproven(identity: Identity, proof: Proof, field: str) -> ShopperNotProven:
    named = f"{field} ({identity.type.value})"
    if proof is None:
        return ShopperNotProven(
            f"{named}: a storefront key needs a shopper proof for this identity, sent as the "
            f"{HEADER_NAME} header and signed by the shop's back end",
            Missing.NO_PROOF,
        )
    if isinstance(proof, ProofRefused):
        return ShopperNotProven(f"{named}: {proof.reason}", Missing.PROOF_REFUSED)
    return ShopperNotProven(
        f"{named}: the shopper proof sent does not name this identity", Missing.OTHER_SHOPPER
    )


def event_refusal(event: TrackedEvent, proof: Proof) -> ShopperNotProven | InvalidInput | None:
    """Why a storefront key may not send ``event`` (None: it may)."""
    if event.type not in STOREFRONT_EVENT_TYPES:
        return ShopperNotProven(
            f"{event.type.value} comes from the shop's servers: a storefront key may not send it "
            "(use an ingest key)",
            Missing.SERVER_ONLY,
        )
    target = event.target
    try:
        if target.identity is not None and target.identity.type is IdentityType.ANONYMOUS_ID:
            check_anonymous_id(target.identity.value, "anonymousId")
        elif target.identity is not None:
            check_identity(target.identity, proof, "identity")
        elif target.id is not None:
            raise _by_id("profileId")
    except (ShopperNotProven, InvalidInput) as refusal:
        return refusal
    return None
