"""Several organisations may share one Redis: every key the rate limiter and its counters
write starts with the organisation's prefix, and one organisation's counts never limit
another's visitors."""

from __future__ import annotations

import os
import uuid

import pytest
import redis

from shared.app import create_app
from shared.auth import code_attempts
from shared.config import Config, ConfigError
from tests.conftest import make_config, submit

REDIS_URL = os.environ.get("EINBLICK_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def redis_available() -> bool:
    try:
        return redis.Redis.from_url(REDIS_URL, socket_timeout=1).ping()
    except redis.RedisError:
        return False


def test_the_prefix_comes_from_the_slug_or_the_organisation_name():
    assert Config().redis_key_prefix == "einblick:einblick"
    assert Config(organisation_name="Jugendhilfe Süd e.V.").redis_key_prefix == (
        "einblick:jugendhilfe-sud-e-v")
    assert Config(organisation_name="Jugendhilfe Süd e.V.",
                  organisation_slug="jhs-berlin").redis_key_prefix == "einblick:jhs-berlin"
    with pytest.raises(ConfigError, match="EINBLICK_ORGANISATION_SLUG"):
        Config.from_env({"EINBLICK_ORGANISATION_SLUG": "Süd e.V."})
    with pytest.raises(ConfigError, match="EINBLICK_ORGANISATION_SLUG"):
        Config.from_env({"EINBLICK_ORGANISATION_NAME": "خدمة"})  # no Latin letters


@pytest.mark.skipif(not redis_available() and not os.environ.get("CI"),
                    reason=f"no Redis at {REDIS_URL}")
def test_two_organisations_share_a_redis_without_sharing_counts(
    database_url, tmp_path, make_client
):
    person = make_client(email=f"prefix-{uuid.uuid4().hex[:6]}@example.org")
    slugs = [f"alpha-{uuid.uuid4().hex[:6]}", f"beta-{uuid.uuid4().hex[:6]}"]

    def organisation(slug: str):
        # One app per process in production: the limiter follows the app made last.
        return create_app(make_config(tmp_path / slug, database_url,
                                      ratelimit_storage_uri=REDIS_URL, organisation_slug=slug))

    alpha = organisation(slugs[0])
    store = redis.Redis.from_url(REDIS_URL)
    wrong = {"email": person.email, "password": "wrong-password-for-prefix"}
    alpha_client = alpha.test_client()
    statuses = [submit(alpha_client, "/login", wrong).status_code for _ in range(11)]
    assert statuses[-1] == 429
    alpha_keys = [key.decode() for key in store.scan_iter(f"einblick:{slugs[0]}:*")]
    assert any("LIMITER" in key for key in alpha_keys), alpha_keys
    # The code-attempt counter writes under the same prefix.
    with alpha.app_context():
        assert code_attempts._counter().storage.key_prefix == f"einblick:{slugs[0]}"
    # The other organisation's visitors are not limited by these counts, and its own
    # counts live under its own prefix.
    beta = organisation(slugs[1])
    assert submit(beta.test_client(), "/login", wrong).status_code == 200
    assert list(store.scan_iter(f"einblick:{slugs[1]}:*"))
    for slug in slugs:
        for key in store.scan_iter(f"einblick:{slug}:*"):
            store.delete(key)
