"""The quota limiter's arithmetic, on a real Redis, with a clock the tests move by hand."""

from __future__ import annotations

import uuid

import pytest
import redis

from bss.gateway import QuotaKey, QuotaLimiter
from bss.gateway.quota import LAG_TOLERANCE, QUIET_SECONDS, RECOVERY_STEP_SECONDS

KEY = QuotaKey("123456789012", "licensing")
OTHER = QuotaKey("123456789012", "reseller")


class FakeClock:
    """Seconds that pass only when a test says so."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


@pytest.fixture
def limiter(client: redis.Redis, clock: FakeClock) -> QuotaLimiter:
    """Paced at the full limit (no headroom), so the figures below are the limit's own."""
    return QuotaLimiter(client, clock=clock, headroom=1.0, prefix=f"test:{uuid.uuid4().hex}")


def granted_times(
    limiter: QuotaLimiter, clock: FakeClock, key: QuotaKey, per_second: float, seconds: float
) -> list[float]:
    """A thread calling as fast as the limiter lets it for `seconds`: when each call went."""
    start, times = clock.now, []
    while clock.now - start < seconds:
        wait = limiter.acquire(key, per_second)
        if wait == 0:
            times.append(clock.now - start)
        else:
            clock.advance(wait)
    return times


def most_in_one_second(times: list[float]) -> int:
    return max(sum(1 for u in times if t <= u < t + 1 - 1e-6) for t in times)


def test_a_busy_key_gets_its_limit_per_second_spread_evenly(limiter, clock):
    # Given a limit of 10 calls/s, when a thread calls as fast as it may for 20 s
    times = granted_times(limiter, clock, KEY, 10, 20)
    # Then it made 10 calls a second, never more than 10 in any one second, one every 0.1 s
    assert len(times) == pytest.approx(200, abs=2)
    assert most_in_one_second(times) <= 10
    gaps = [b - a for a, b in zip(times[1:], times[2:], strict=False)]
    assert min(gaps) == pytest.approx(0.1) and max(gaps) == pytest.approx(0.1)


def test_the_wait_is_returned_and_nothing_is_counted_until_the_call_may_go(limiter, clock):
    assert limiter.acquire(KEY, 2) == 0.0
    # The next call waits one interval (0.5 s)
    wait = limiter.acquire(KEY, 2)
    assert wait == pytest.approx(0.5)
    # Asking again takes nothing: the wait is the same
    assert limiter.acquire(KEY, 2) == pytest.approx(wait)
    clock.advance(wait / 2)
    assert limiter.acquire(KEY, 2) == pytest.approx(wait / 2)
    clock.advance(wait / 2)
    assert limiter.acquire(KEY, 2) == 0.0
    # And a thread that wakes up a little late keeps the cadence: the next slot stays put
    late = 0.5 * LAG_TOLERANCE / 2
    clock.advance(0.5 + late)
    assert limiter.acquire(KEY, 2) == 0.0
    assert limiter.acquire(KEY, 2) == pytest.approx(0.5 - late)
    # But a quiet key gives no credit for the time it was not used
    clock.advance(5)
    assert limiter.acquire(KEY, 2) == 0.0
    assert limiter.acquire(KEY, 2) == pytest.approx(0.5)


def test_calls_are_paced_to_the_headroom_below_the_limit_by_default(client, clock):
    limiter = QuotaLimiter(client, clock=clock, prefix=f"test:{uuid.uuid4().hex}")
    times = granted_times(limiter, clock, KEY, 10, 20)
    assert len(times) == pytest.approx(190, abs=2)  # 95 % of 10 calls/s


def test_no_burst_by_default_but_a_burst_can_be_allowed(client, clock, limiter):
    # By default a quiet key lets one call go at once, then spreads the rest
    assert [limiter.acquire(KEY, 10) for _ in range(2)] == [0.0, pytest.approx(0.1)]
    # With a burst of 3, three calls go at once after a quiet spell, then one per interval
    bursty = QuotaLimiter(
        client, clock=clock, headroom=1.0, burst=3, prefix=f"test:{uuid.uuid4().hex}"
    )
    assert [bursty.acquire(KEY, 10) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bursty.acquire(KEY, 10) == pytest.approx(0.1)
    times = granted_times(bursty, clock, KEY, 10, 10)
    assert len(times) == pytest.approx(100, abs=2)  # the burst is not a higher rate


def test_a_reservation_books_a_short_wait_first_come_first_served(limiter, clock):
    assert limiter.reserve(KEY, 10, max_wait=1.0) == 0.0
    # Threads asking one after the other are booked one interval apart, up to a second ahead
    waits = [limiter.reserve(KEY, 10, max_wait=1.0) for _ in range(12)]
    assert waits[:10] == [pytest.approx(0.1 * k) for k in range(1, 11)]
    # Longer waits are told, and nothing is booked for them
    assert waits[10:] == [pytest.approx(1.1)] * 2
    clock.advance(1.0)
    assert limiter.acquire(KEY, 10) == pytest.approx(0.1)
    # And the booked calls count as made, at the time they were booked for
    clock.advance(9.5)
    assert limiter.usage()[0].calls_per_second == pytest.approx(1.1)


def test_a_batch_of_n_calls_goes_at_once_then_holds_the_key_for_n_intervals(limiter, clock):
    # A batch of one second's worth goes at once on a quiet key
    assert limiter.acquire(KEY, 10, n=10) == 0.0
    # Then the key is busy for about that second
    assert limiter.acquire(KEY, 10) == pytest.approx(1.0)
    assert limiter.acquire(KEY, 10, n=10) == pytest.approx(1.0)
    # Batch after batch, the key gets its limit per second
    clock.advance(1.0)
    granted = 0
    for _ in range(50):
        wait = limiter.acquire(KEY, 10, n=5)
        if wait == 0:
            granted += 5
        clock.advance(wait)
    assert clock.now - 1_000_001.0 == pytest.approx(granted / 10, abs=0.6)


def test_a_rate_limit_answer_slows_the_key_until_a_quiet_period_brings_it_back(limiter, clock):
    granted_times(limiter, clock, KEY, 10, 1)
    # Given Google answered a rate limit: a lone one trims the pace by a tenth
    assert limiter.slow_down(KEY) == pytest.approx(0.9)
    # (and another at once, to a call that was already in flight, does not count twice)
    assert limiter.slow_down(KEY) == pytest.approx(0.9)
    # Then the key gets 9 calls/s
    assert len(granted_times(limiter, clock, KEY, 10, 10)) == pytest.approx(90, abs=2)
    [use] = limiter.usage()
    assert (use.limit_per_second, use.rate_limited) == (10, 2)
    assert use.effective_per_second == pytest.approx(9) and use.slowed
    # Another lone one, later, trims it again
    assert limiter.slow_down(KEY) == pytest.approx(0.81)
    # Answers on each other's heels halve it, down to a tenth of the limit
    clock.advance(1.0)
    assert limiter.slow_down(KEY) == pytest.approx(0.405)
    assert len(granted_times(limiter, clock, KEY, 10, 10)) == pytest.approx(40.5, abs=2)
    for _ in range(5):
        clock.advance(1.0)
        limiter.slow_down(KEY)
    assert limiter.slow_down(KEY) == pytest.approx(0.1)
    # After a quiet period the pace comes back step by step, up to the full limit
    clock.advance(QUIET_SECONDS - 0.1)
    assert limiter.usage()[0].effective_per_second == pytest.approx(1.0)
    clock.advance(0.1)
    assert limiter.usage()[0].effective_per_second == pytest.approx(2.0)
    clock.advance(RECOVERY_STEP_SECONDS)
    assert limiter.usage()[0].effective_per_second == pytest.approx(3.0)
    clock.advance(RECOVERY_STEP_SECONDS * 10)
    use = limiter.usage()[0]
    assert use.effective_per_second == pytest.approx(10.0) and not use.slowed
    assert len(granted_times(limiter, clock, KEY, 10, 10)) == pytest.approx(100, abs=2)
    # And the next lone answer trims it by a tenth again
    assert limiter.slow_down(KEY) == pytest.approx(0.9)


def test_a_rate_limit_in_the_quiet_period_starts_it_again(limiter, clock):
    limiter.acquire(KEY, 10)
    limiter.slow_down(KEY)
    clock.advance(QUIET_SECONDS - 1)
    limiter.slow_down(KEY)  # not quiet yet: trimmed again, and the quiet period starts over
    clock.advance(QUIET_SECONDS - 1)
    assert limiter.usage()[0].effective_per_second == pytest.approx(8.1)


def test_retry_after_holds_the_key_until_then(limiter, clock):
    assert limiter.acquire(KEY, 10) == 0.0
    limiter.slow_down(KEY, retry_after=20)
    assert limiter.acquire(KEY, 10) == pytest.approx(20)
    assert limiter.usage()[0].blocked_seconds == pytest.approx(20)
    clock.advance(19.9)
    assert limiter.acquire(KEY, 10) == pytest.approx(0.1)
    clock.advance(0.1)
    assert limiter.acquire(KEY, 10) == 0.0


def test_two_keys_are_independent(limiter, clock):
    limiter.acquire(KEY, 1, n=1)
    limiter.slow_down(KEY, retry_after=60)
    # The other API of the same project is neither held nor slowed
    times = granted_times(limiter, clock, OTHER, 5, 4)
    assert len(times) == pytest.approx(20, abs=1)
    uses = {use.api: use for use in limiter.usage()}
    assert uses["reseller"].effective_per_second == 5 and not uses["reseller"].slowed
    assert uses["licensing"].slowed and uses["licensing"].rate_limited == 1
    # And the same API of another project has its own quota
    assert limiter.acquire(QuotaKey("999", "licensing"), 1) == 0.0


def test_usage_counts_the_calls_of_the_last_ten_seconds(limiter, clock):
    granted_times(limiter, clock, OTHER, 4, 30)
    [use] = limiter.usage()
    assert (use.project, use.api, use.limit_per_second) == ("123456789012", "reseller", 4)
    assert use.calls_per_second == pytest.approx(4, abs=0.2)
    clock.advance(5)
    assert limiter.usage()[0].calls_per_second == pytest.approx(2, abs=0.2)
    clock.advance(6)
    assert limiter.usage()[0].calls_per_second == 0


def test_a_new_limit_applies_at_once_to_the_calls_booked_ahead(limiter, clock):
    limiter.acquire(KEY, 0.1, n=1)  # the next slot is 10 s away at 0.1 calls/s
    assert limiter.acquire(KEY, 0.1) == pytest.approx(10.0)
    # When the instance's quota is raised to 10 calls/s, it is 0.09 s away
    assert limiter.acquire(KEY, 10) == pytest.approx(0.1, abs=0.001)


def test_when_the_pace_rises_the_calls_already_booked_keep_their_turn(limiter, clock):
    limiter.acquire(KEY, 10)
    limiter.slow_down(KEY)  # paced at 9/s
    clock.advance(QUIET_SECONDS - 0.5)
    waits = [limiter.reserve(KEY, 10, max_wait=2) for _ in range(10)]
    assert waits[-1] == pytest.approx(9 / 9)  # the last one booked a second ahead
    # When the quiet period brings the pace back to 10/s, half a second later
    clock.advance(0.6)
    # Then the next call comes one new interval after the last one booked, not sooner
    assert limiter.reserve(KEY, 10, max_wait=2) == pytest.approx(1.0 - 0.6 + 0.1)


def test_jobs_that_give_their_thread_back_come_back_one_place_apart(limiter, clock):
    limiter.acquire(KEY, 2)
    waits = [limiter.book_return(KEY, 2, 1, at_least=3.0) for _ in range(4)]
    assert waits == [pytest.approx(w) for w in (3.0, 3.5, 4.0, 4.5)]
    clock.advance(10)  # the line has gone by
    assert limiter.book_return(KEY, 2, 1, at_least=3.0) == pytest.approx(3.0)


def test_redis_s_own_clock_is_used_without_one(client):
    limiter = QuotaLimiter(client, headroom=1.0, prefix=f"test:{uuid.uuid4().hex}")
    assert limiter.acquire(KEY, 1) == 0.0
    assert 0.9 < limiter.acquire(KEY, 1) <= 1.0
    assert limiter.usage()[0].limit_per_second == 1
