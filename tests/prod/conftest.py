"""The production journey runs only against a running production set-up: `.ci/run`
starts one (`scripts/ci_prod_journey.sh`) and sets EINBLICK_PROD_URL; without it the
tests here are skipped, so `make test` never needs gunicorn, PostgreSQL or Redis."""

from __future__ import annotations

import os

import pytest

from tests.browser.conftest import (
    CHROMIUM,
    browser,  # noqa: F401  (the session's Chromium)
)


def pytest_collection_modifyitems(config, items):
    reason = None
    if not os.environ.get("EINBLICK_PROD_URL"):
        reason = "needs a running production set-up: set EINBLICK_PROD_URL (see .ci/run)"
    elif not os.path.exists(CHROMIUM):
        reason = f"no Chromium at {CHROMIUM}"
    for item in items:
        if "tests/prod" in str(item.fspath):
            item.add_marker(pytest.mark.prod)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def prod_url() -> str:
    return os.environ["EINBLICK_PROD_URL"].rstrip("/")
