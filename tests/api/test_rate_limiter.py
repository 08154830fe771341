"""The per-process table of buckets: one per key, refilled by the clock it is given, bounded."""

from dataclasses import dataclass

from profilegate.api.rate_limits import RateLimiter
from profilegate.domain.keys import Principal, Role
from profilegate.domain.rate_limits import RateLimit

LIMITS = {role: RateLimit(per_second=1.0, burst=2) for role in Role}


@dataclass
class Seconds:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


def key(key_id: str, role: Role = Role.STOREFRONT) -> Principal:
    return Principal(name=f"name-{key_id}", role=role, key_id=key_id)


def test_each_key_has_its_own_bucket_and_time_refills_it() -> None:
    clock = Seconds()
    limiter = RateLimiter(LIMITS, clock=clock)
    shop, other = key("shop"), key("other")

    assert [limiter.take(shop).allowed for _ in range(3)] == [True, True, False]
    assert limiter.take(other).allowed
    clock.now += 1.0
    assert [limiter.take(shop).allowed for _ in range(2)] == [True, False]


def test_the_admin_key_from_the_settings_has_a_bucket_by_its_name() -> None:
    limiter = RateLimiter(LIMITS, clock=Seconds())
    admin = Principal(name="admin-key", role=Role.ADMIN)

    assert [limiter.take(admin).allowed for _ in range(3)] == [True, True, False]


def test_buckets_full_again_are_forgotten_and_the_table_is_bounded() -> None:
    clock = Seconds()
    limiter = RateLimiter(LIMITS, clock=clock, max_keys=3)
    for number in range(5):
        limiter.take(key(f"k{number}"))
    assert len(limiter) == 3  # the least recently used went first

    clock.now += 2.0  # every bucket is full again
    limiter.take(key("late"))
    assert len(limiter) == 1


def test_a_storefront_key_has_a_bucket_per_client_address_and_other_keys_do_not() -> None:
    limiter = RateLimiter(LIMITS, clock=Seconds())
    shop, partner = key("shop"), key("crm", Role.PARTNER)

    assert [limiter.take(shop, "10.0.0.1").allowed for _ in range(3)] == [True, True, False]
    assert limiter.take(shop, "10.0.0.2").allowed  # another shopper is not held back
    assert [limiter.take(partner, "10.0.0.1").allowed for _ in range(2)] == [True, True]
    assert not limiter.take(partner, "10.0.0.2").allowed  # one bucket for the partner's key
