"""Rate-limit state lives in Redis when configured, so several workers share it."""

import os
import uuid

import pytest
import redis

from shared.app import create_app
from tests.conftest import make_config, submit

REDIS_URL = os.environ.get("EINBLICK_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def redis_available() -> bool:
    try:
        return redis.Redis.from_url(REDIS_URL, socket_timeout=1).ping()
    except redis.RedisError:
        return False


@pytest.mark.skipif(not redis_available() and not os.environ.get("CI"),
                    reason=f"no Redis at {REDIS_URL}")
def test_two_workers_share_failure_counts_through_redis(database_url, tmp_path, make_client):
    person = make_client(email=f"shared-{uuid.uuid4().hex[:6]}@example.org")
    workers = [
        create_app(make_config(tmp_path / f"w{i}", database_url,
                               ratelimit_storage_uri=REDIS_URL)).test_client()
        for i in range(2)
    ]
    statuses = []
    for attempt in range(11):
        worker = workers[attempt % 2]
        statuses.append(submit(worker, "/login", {"email": person.email,
                                                 "password": f"wrong-{attempt}-password"}
                               ).status_code)
    # Ten failures spread over two workers, then both refuse: the count is shared.
    assert statuses[:10] == [200] * 10
    assert statuses[10] == 429
    assert submit(workers[0], "/login", {"email": person.email,
                                         "password": person.password}).status_code == 429


@pytest.mark.skipif(not redis_available() and not os.environ.get("CI"),
                    reason=f"no Redis at {REDIS_URL}")
def test_wrong_codes_of_one_sign_in_count_across_workers_through_redis(
    database_url, tmp_path, make_client, totp_clock
):
    person = make_client(email=f"codes-{uuid.uuid4().hex[:6]}@example.org", totp=True)
    apps = [create_app(make_config(tmp_path / f"w{i}", database_url,
                                   ratelimit_storage_uri=REDIS_URL)) for i in range(2)]
    workers = [worker_app.test_client() for worker_app in apps]
    cookie_name = apps[0].config["SESSION_COOKIE_NAME"]
    assert submit(workers[0], "/login", {"email": person.email, "password": person.password}
                  ).headers["Location"] == "/login/code"
    pending = workers[0].get_cookie(cookie_name).value
    workers[1].set_cookie(cookie_name, pending)  # a load balancer may send either way
    answers = [submit(workers[i % 2], "/login/code",
                      {"code": totp_clock.wrong_code(person.totp_secret)}).status_code
               for i in range(5)]
    assert answers == [200] * 4 + [302]
    # The other worker knows too: the same pending sign-in is over there as well.
    workers[0].set_cookie(cookie_name, pending)
    totp_clock.advance()
    again = submit(workers[0], "/login/code", {"code": totp_clock.code(person.totp_secret)})
    assert again.headers["Location"] == "/login"
