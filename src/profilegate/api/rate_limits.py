"""Rate limits per API key: one token bucket per key, kept in this process's memory.

A storefront key is shipped to every shopper's browser, so its bucket is per key and client
address (behind a proxy, the address the proxy reports: ``serve`` trusts proxy headers from
``FORWARDED_ALLOW_IPS``): one shopper or bot cannot use up the shop's requests.

Each process keeps its own buckets, so with N gateway processes a key gets up to N times
its rate; a limiter shared by all of them (at the load balancer) is the place for exact
limits. Buckets idle long enough to be full again are dropped, and at most ``max_keys``
are kept (the least recently used goes first).
"""

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from starlette.responses import JSONResponse, Response

from profilegate.domain.keys import Principal, Role
from profilegate.domain.rate_limits import Bucket, RateLimit, Taken, take

MAX_KEYS = 100_000
RATE_LIMITED_CLOSE_CODE = 4429


class RateLimiter:
    def __init__(
        self,
        limits: Mapping[Role, RateLimit],
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self._limits = dict(limits)
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[Role, Bucket]] = OrderedDict()

    def limit_of(self, role: Role) -> RateLimit:
        return self._limits[role]

    def take(self, principal: Principal, client: str | None = None) -> Taken:
        """Count one request of ``principal``'s key (from ``client``) against its role's limit."""
        key = _bucket_key(principal, client)
        limit = self._limits[principal.role]
        now = self._clock()
        held = self._buckets.pop(key, None)
        taken = take(held[1] if held is not None else None, limit, now)
        self._buckets[key] = (principal.role, taken.bucket)
        self._evict(now)
        return taken

    def peek(self, principal: Principal, client: str | None = None) -> Taken:
        """What ``take`` would answer now, without taking a token."""
        held = self._buckets.get(_bucket_key(principal, client))
        return take(held[1] if held is not None else None, self._limits[principal.role], self._clock())

    def __len__(self) -> int:
        return len(self._buckets)

    def _evict(self, now: float) -> None:
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        while self._buckets:
            role, bucket = next(iter(self._buckets.values()))
            limit = self._limits[role]
            if now - bucket.at < limit.seconds_to_full(bucket.tokens):
                return
            self._buckets.popitem(last=False)  # as full as a new bucket: forgetting it changes nothing


def rate_limited(limit: RateLimit, taken: Taken, what: str = "requests") -> Response:
    """429 with ``Retry-After`` and a GraphQL-shaped error a client can switch on."""
    seconds = taken.retry_after_seconds
    body = {
        "errors": [
            {
                "message": f"rate limit of {limit.per_second:g} {what}/s for this key exceeded",
                "extensions": {"code": "RATE_LIMITED", "retryAfter": seconds},
            }
        ]
    }
    return JSONResponse(body, status_code=429, headers={"retry-after": str(seconds)})


def client_address(scope: Mapping[str, Any]) -> str | None:
    """The client's address, as the server (or a trusted proxy in front of it) reports it."""
    client = scope.get("client")
    return str(client[0]) if client else None


def _bucket_key(principal: Principal, client: str | None) -> str:
    key = principal.key_id or f"name:{principal.name}"  # the admin key from settings has no id
    return f"{key}@{client}" if principal.role is Role.STOREFRONT else key
