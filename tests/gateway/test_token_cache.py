"""Access tokens shared across processes: one refresh per instance per token lifetime."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta

import pytest
import redis
from google.auth import credentials as ga_credentials
from google.auth import exceptions as auth_exceptions

from bss.crypto import Vault, generate_key
from bss.gateway import TokenCache


class GoogleTokenEndpoint(ga_credentials.Credentials):
    """Stands in for Google's token endpoint (the edge of the system): counts refreshes."""

    refreshes = 0
    lock = threading.Lock()
    dead = False

    def refresh(self, request):
        if GoogleTokenEndpoint.dead:
            raise auth_exceptions.RefreshError("invalid_grant", {"error": "invalid_grant"})
        time.sleep(0.2)  # a slow token endpoint makes a stampede likely
        with GoogleTokenEndpoint.lock:
            GoogleTokenEndpoint.refreshes += 1
            n = GoogleTokenEndpoint.refreshes
        self.token = f"ya29.token-{n}"
        self.expiry = datetime.utcnow() + timedelta(seconds=3599)  # noqa: DTZ003 (google-auth's naive UTC)


@pytest.fixture
def cache(redis_url):
    GoogleTokenEndpoint.refreshes = 0
    GoogleTokenEndpoint.dead = False
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    return TokenCache(client, Vault([generate_key()]), margin_seconds=300)


def test_many_jobs_at_once_refresh_the_token_once(cache):
    # Given 12 jobs of one instance starting together, in what could be 12 processes
    tokens = []

    def job():
        creds = cache.wrap(GoogleTokenEndpoint(), instance_id=7, grant="g1")
        creds.before_request(None, "GET", "https://example", {})
        tokens.append(creds.token)

    threads = [threading.Thread(target=job) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Then Google was asked once, and everybody uses that token
    assert GoogleTokenEndpoint.refreshes == 1
    assert set(tokens) == {"ya29.token-1"}


def test_the_cached_token_is_encrypted_and_kept_until_shortly_before_expiry(cache):
    cache.wrap(GoogleTokenEndpoint(), instance_id=8, grant="g").refresh(None)
    [key] = list(cache.redis.scan_iter("bss:token:8:*"))
    assert b"ya29" not in cache.redis.get(key)
    assert 3599 - 300 - 5 <= cache.redis.ttl(key) <= 3599 - 300


def test_a_refused_token_is_refreshed_once_more_not_reused(cache):
    first = cache.wrap(GoogleTokenEndpoint(), instance_id=9, grant="g")
    first.refresh(None)
    # When Google refuses the token (a 401), google-auth asks for a new one
    first.refresh(None)
    assert first.token == "ya29.token-2"
    # And another process then takes the new one without refreshing
    other = cache.wrap(GoogleTokenEndpoint(), instance_id=9, grant="g")
    other.refresh(None)
    assert other.token == "ya29.token-2" and GoogleTokenEndpoint.refreshes == 2


def test_a_new_grant_does_not_use_the_old_grants_token_and_a_dead_grant_is_dropped(cache):
    cache.wrap(GoogleTokenEndpoint(), instance_id=10, grant="old").refresh(None)
    fresh = cache.wrap(GoogleTokenEndpoint(), instance_id=10, grant="new")
    fresh.refresh(None)
    assert fresh.token == "ya29.token-2"
    GoogleTokenEndpoint.dead = True
    cache.drop(10, "new")
    with pytest.raises(auth_exceptions.RefreshError):
        cache.wrap(GoogleTokenEndpoint(), instance_id=10, grant="new").refresh(None)
    assert cache.get(10, "new") is None


def test_a_process_reads_the_shared_token_once_not_per_job(cache, redis_url):
    # Given a token another process refreshed and shared
    TokenCache(cache.redis, cache.vault).wrap(
        GoogleTokenEndpoint(), instance_id=10, grant="g"
    ).refresh(None)
    here = TokenCache(redis.Redis.from_url(redis_url), cache.vault, margin_seconds=300)
    reads = []
    real_get = here.redis.get
    here.redis.get = lambda key: reads.append(key) or real_get(key)
    # When 20 jobs of this process take it
    for _ in range(20):
        job = here.wrap(GoogleTokenEndpoint(), instance_id=10, grant="g")
        job.before_request(None, "GET", "https://example", {})
        assert job.token == "ya29.token-1"
    # Then Redis was read once, and Google never asked again
    assert len(reads) == 1 and GoogleTokenEndpoint.refreshes == 1
    # And a token Google refuses here is looked up in Redis again, then refreshed once
    job.refresh(None)
    assert job.token == "ya29.token-2" and len(reads) == 2
    # And "Refresh now" (forget) leaves no copy behind in this process either
    job.forget()
    assert here.get(10, "g") is None
