"""The rules deliveries follow: egress, timeouts, the retry schedule and the lease.

The retry schedule: after the n-th failed attempt the next waits a random time between 0 and
min(``retry_max_seconds``, ``retry_first_seconds`` x 2^(n-1)) ("full jitter", computed by
tenacity's ``wait_random_exponential``), or the receiver's ``Retry-After`` when that is longer
(capped at ``retry_for_seconds``); once ``retry_for_seconds`` have passed since the first
attempt, the batch is given up to the dead letters. Defaults: 5 s, doubling, capped at 1 h,
for 24 h.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import tenacity


@dataclass(frozen=True)
class DeliveryRules:
    development: bool = True  # http:// URLs are accepted
    allow_private: bool = False  # loopback, private and link-local addresses are accepted
    consent_purposes: Sequence[str] = ()  # the purposes a destination may name (empty: any)
    timeout_seconds: float = 10.0
    response_max_bytes: int = 65_536
    retry_first_seconds: float = 5.0
    retry_max_seconds: float = 3600.0
    retry_for_seconds: float = 86_400.0
    pause_after_dead_letters: int = 3
    pause_after_failing_seconds: float = 172_800.0
    lease_seconds: float = 10.0
    refresh_seconds: float = 1.0
    secret_grace: timedelta = field(default_factory=lambda: timedelta(hours=24))

    def retry_wait(self, attempts: int, retry_after: float | None = None) -> float:
        """Seconds before the next attempt of a batch that failed ``attempts`` times."""
        wait = tenacity.wait_random_exponential(
            multiplier=self.retry_first_seconds, max=self.retry_max_seconds
        )
        state = tenacity.RetryCallState(tenacity.AsyncRetrying(), None, (), {})
        state.attempt_number = max(1, attempts)
        jittered = wait(state)
        if retry_after is not None:
            return max(jittered, min(retry_after, self.retry_for_seconds))
        return jittered

    @property
    def renew_seconds(self) -> float:
        """How often a holder renews its lease: three times per lease."""
        return self.lease_seconds / 3
