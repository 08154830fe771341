"""Storefront keys over HTTP: the shopper proof a request carries, the extensions a shopper may
be shown, and the refusals a client may run into before it is slowed down (docs/access.md)."""

import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime

from graphql import GraphQLError
from prometheus_client import Counter

from profilegate.api.rate_limits import RateLimiter
from profilegate.domain.errors import DomainError, InvalidInput
from profilegate.domain.events import TrackedEvent
from profilegate.domain.keys import Principal, Role
from profilegate.domain.rate_limits import RateLimit, Taken
from profilegate.domain.shopper_proofs import LEEWAY_SECONDS, ShopperProof, verify_proof
from profilegate.domain.storefront import Missing, Proof, ShopperNotProven, event_refusal
from profilegate.service.cached import Cached
from profilegate.service.tracking import Screen
from profilegate.storage.extension_definitions import ExtensionDefinitionRepository

PROOF_HEADER = b"shopper-proof"
# Refusals for want of a proof, per storefront key and client address: a burst, then one
# every few seconds; a client past it is answered 429 until its bucket refills.
REFUSAL_LIMIT = RateLimit(per_second=0.2, burst=20)
MAX_PROOFS_HELD = 10_000  # verified proofs kept per process, oldest dropped first

refusals = Counter(
    "profilegate_storefront_refusals",
    "Storefront requests refused a known shopper, by key name and what was missing.",
    ["key", "missing"],
)
refusals_limited = Counter(
    "profilegate_storefront_refusals_limited",
    "Storefront requests answered 429 after too many refusals from one client, by key name.",
    ["key"],
)


class StorefrontAccess:
    """Per process: the names of the extensions shown to shoppers (read again after
    ``cache_seconds``) and the refusal buckets of storefront clients."""

    def __init__(
        self,
        definitions: ExtensionDefinitionRepository,
        *,
        cache_seconds: float,
        refusal_limit: RateLimit = REFUSAL_LIMIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._shown = Cached(definitions.shown_to_shoppers, cache_seconds)
        self._refusals = RateLimiter({Role.STOREFRONT: refusal_limit}, clock=clock)
        self._verified: OrderedDict[tuple[str, str], ShopperProof] = OrderedDict()

    def read_proof(self, principal: Principal, header: str | None, now: datetime) -> Proof:
        """The verified proof of a storefront request (None without one); server keys need none.
        A proof holds for its lifetime, and a page sends it several times: a proof verified
        before is taken from memory (verifying costs ~0.15 ms of CPU, most of it PyJWT's)."""
        if principal.role is not Role.STOREFRONT or header is None:
            return None
        key = principal.proof_key
        seen = (f"{key.audience}:{key.algorithm}", header.strip())
        held = self._verified.get(seen)
        if held is not None and now.timestamp() < held.expires_at.timestamp() + LEEWAY_SECONDS:
            return held
        verified = verify_proof(seen[1], key, now)
        if isinstance(verified, ShopperProof):
            self._verified[seen] = verified
            while len(self._verified) > MAX_PROOFS_HELD:
                self._verified.popitem(last=False)
        return verified

    async def shown_extensions(self) -> frozenset[str]:
        return await self._shown.get()

    def forget_shown(self) -> None:
        """A definition changed in this process: read the names again."""
        self._shown.forget()

    def slowed(self, principal: Principal, client: str | None) -> Taken | None:
        """Whether this storefront client used up its refusals (None: it did not)."""
        if principal.role is not Role.STOREFRONT:
            return None
        taken = self._refusals.peek(principal, client)
        if taken.allowed:
            return None
        refusals_limited.labels(principal.name).inc()
        return taken

    def refused(self, principal: Principal, client: str | None, missing: Missing) -> None:
        """Count a refusal; one for want of a proof takes from the client's bucket."""
        refusals.labels(principal.name, missing.value).inc()
        if missing is not Missing.SERVER_ONLY:
            self._refusals.take(principal, client)


def event_screen(
    principal: Principal, proof: Proof, access: StorefrontAccess, client: str | None
) -> Screen | None:
    """For a storefront key, why it may not send an event (refusals counted); server keys send any."""
    if principal.role is not Role.STOREFRONT:
        return None

    def screen(event: TrackedEvent) -> str | None:
        refusal = event_refusal(event, proof)
        if isinstance(refusal, ShopperNotProven):
            access.refused(principal, client, refusal.missing)
        return None if refusal is None else refusal.message

    return screen


def not_permitted(error: DomainError) -> GraphQLError:
    """For queries, which have no result union: the refusal as a GraphQL error."""
    if isinstance(error, InvalidInput):
        return GraphQLError(error.message, extensions={"code": "BAD_USER_INPUT", "field": error.field})
    extensions: dict[str, object] = {"code": "FORBIDDEN", "type": "NotPermittedError"}
    if isinstance(error, ShopperNotProven):
        extensions["missing"] = error.missing.value
    return GraphQLError(error.message, extensions=extensions)
