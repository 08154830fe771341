"""Token buckets: a burst, then the refill rate; a new key starts full."""

import pytest

from profilegate.domain.rate_limits import Bucket, RateLimit, take

LIMIT = RateLimit(per_second=2.0, burst=3)


def drain(count: int, now: float) -> Bucket | None:
    bucket: Bucket | None = None
    for _ in range(count):
        taken = take(bucket, LIMIT, now)
        assert taken.allowed
        bucket = taken.bucket
    return bucket


def test_a_new_key_may_send_its_burst_at_once_and_not_one_more() -> None:
    bucket = drain(3, now=100.0)

    refused = take(bucket, LIMIT, 100.0)

    assert not refused.allowed
    assert refused.retry_after == pytest.approx(0.5)  # one token at 2 per second
    assert refused.retry_after_seconds == 1


@pytest.mark.parametrize(
    ("waited", "allowed_after"),
    [(0.4, 0), (0.5, 1), (1.0, 2), (60.0, 3)],  # never more than the burst
)
def test_tokens_come_back_at_the_rate_up_to_the_burst(waited: float, allowed_after: int) -> None:
    bucket = drain(3, now=100.0)
    now = 100.0 + waited
    allowed = 0
    while (taken := take(bucket, LIMIT, now)).allowed:
        allowed, bucket = allowed + 1, taken.bucket
    assert allowed == allowed_after


def test_retry_after_is_whole_seconds_rounded_up() -> None:
    slow = RateLimit(per_second=0.4, burst=1)
    bucket = take(None, slow, 0.0).bucket

    refused = take(bucket, slow, 0.0)

    assert refused.retry_after == pytest.approx(2.5)
    assert refused.retry_after_seconds == 3


def test_a_clock_that_goes_back_refills_nothing() -> None:
    bucket = drain(3, now=100.0)

    assert not take(bucket, LIMIT, 50.0).allowed
