"""Token buckets: a key may send ``burst`` requests at once, then ``per_second`` on average.

Hand-written rather than taken from the ``limits`` package: that one offers fixed, moving
and sliding windows, not a bucket with a refill rate apart from its burst, and reads the
clock itself; this is twenty lines of arithmetic with ``now`` passed in, so it is tested
without sleeping.
"""

import math
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field


class RateLimit(BaseModel):
    """What one key may send: ``burst`` requests at once, refilled at ``per_second``."""

    model_config = ConfigDict(frozen=True)

    per_second: float = Field(gt=0)
    burst: int = Field(ge=1)

    def seconds_to_full(self, tokens: float) -> float:
        return (self.burst - tokens) / self.per_second


@dataclass(frozen=True)
class Bucket:
    """The tokens a key had left at ``at`` (seconds on a monotonic clock)."""

    tokens: float
    at: float


@dataclass(frozen=True)
class Taken:
    """The bucket after a request, and how long to wait before trying again (0: allowed)."""

    bucket: Bucket
    retry_after: float

    @property
    def allowed(self) -> bool:
        return self.retry_after == 0

    @property
    def retry_after_seconds(self) -> int:
        """``Retry-After`` in whole seconds, at least 1."""
        return max(1, math.ceil(self.retry_after))


def take(bucket: Bucket | None, limit: RateLimit, now: float) -> Taken:
    """Take one token from ``bucket`` (a new key starts full); refuse when less than one is left."""
    tokens = float(limit.burst) if bucket is None else _refilled(bucket, limit, now)
    if tokens >= 1:
        return Taken(Bucket(tokens - 1, now), 0.0)
    return Taken(Bucket(tokens, now), (1 - tokens) / limit.per_second)


def _refilled(bucket: Bucket, limit: RateLimit, now: float) -> float:
    elapsed = max(0.0, now - bucket.at)  # a clock that went back refills nothing
    return min(float(limit.burst), bucket.tokens + elapsed * limit.per_second)
