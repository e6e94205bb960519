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


def storages() -> list:
    """The limiter storages the daily cap must hold on: memory (one process) and Redis."""
    return ["memory://", pytest.param(REDIS_URL, id="redis", marks=pytest.mark.skipif(
        not redis_available() and not os.environ.get("CI"), reason=f"no Redis at {REDIS_URL}"))]


@pytest.mark.parametrize("storage", storages())
def test_codes_checked_at_the_same_time_never_pass_the_daily_cap(
    database_url, tmp_path, make_client, monkeypatch, storage
):
    """Thirty codes from thirty pending sign-ins in unknown browsers, checked at once: the
    cap of 20 wrong codes a day holds, because each code reserves its try before it is
    checked (a count taken after the check let all thirty through)."""
    import secrets
    import threading
    import time

    from shared.auth import code_attempts
    from shared.auth.login_flow import PendingLogin
    from shared.extensions import db
    from shared.models import Account
    from shared.services import accounts

    # The HTTP limits per client address are off (they would count every run against
    # 127.0.0.1 in Redis); the caps on codes apply all the same.
    app = create_app(make_config(tmp_path / "w", database_url, ratelimit_storage_uri=storage,
                                 ratelimit_enabled=False))
    person = make_client(email=f"race-{uuid.uuid4().hex[:6]}@example.org", totp=True)

    def slow_wrong_code(*, account, code):  # the real check, made slow: a wide window
        time.sleep(0.2)
        raise accounts.WrongCode

    monkeypatch.setattr(accounts, "verify_second_factor", slow_wrong_code)
    # The owner's warning mail is not what this test is about.
    monkeypatch.setattr(accounts, "_warn_password_known", lambda account: None)
    outcomes: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(30, timeout=30)

    with app.app_context():  # loaded once: thirty threads would wait for the connection pool
        account = db.session.get(Account, person.account_id)
        db.session.expunge(account)

    def one_sign_in() -> None:
        with app.app_context():
            pending = PendingLogin(account=account, attempt=secrets.token_urlsafe(16))
            start.wait()
            try:
                accounts.verify_pending_second_factor(pending=pending, code="000000",
                                                      device=None)
                outcome = "signed in"
            except accounts.CodesPaused:
                outcome = "paused"
            except accounts.WrongCode:
                outcome = "checked"
            with lock:
                outcomes.append(outcome)

    threads = [threading.Thread(target=one_sign_in) for _ in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["checked"] * code_attempts.NEW_BROWSER_CODES.amount + [
        "paused"] * 10


@pytest.mark.parametrize("storage", storages())
def test_a_right_code_gives_its_try_back(database_url, tmp_path, make_client, totp_clock,
                                         storage):
    """Only wrong codes count against the daily cap: an owner who signs in often from
    browsers that forget their cookies is never paused."""
    # The HTTP limits per client address are off (they would count every run against
    # 127.0.0.1 in Redis); the caps on codes apply all the same.
    app = create_app(make_config(tmp_path / "w", database_url, ratelimit_storage_uri=storage,
                                 ratelimit_enabled=False))
    person = make_client(email=f"often-{uuid.uuid4().hex[:6]}@example.org", totp=True)
    login = {"email": person.email, "password": person.password}

    def sign_in(code: str) -> str:
        browser = app.test_client()  # a new browser, without a device cookie
        assert submit(browser, "/login", login).headers["Location"] == "/login/code"
        return submit(browser, "/login/code", {"code": code}).headers.get("Location", "form")

    for _ in range(19):
        assert sign_in(totp_clock.wrong_code(person.totp_secret)) == "form"
    for _ in range(5):
        totp_clock.advance()
        assert sign_in(totp_clock.code(person.totp_secret)) == "/home"
    assert sign_in(totp_clock.wrong_code(person.totp_secret)) == "form"  # the 20th
    totp_clock.advance()
    assert sign_in(totp_clock.code(person.totp_secret)) == "/login"  # paused now


# -- the step-up limit is exactly the configured one -----------------------------------------
@pytest.fixture
def limiter_clock(monkeypatch, totp_clock):
    """Move the in-memory limiter's clock (and the TOTP clock with it) instead of waiting
    five minutes or a day."""
    from types import SimpleNamespace

    import limits.storage.memory

    monkeypatch.setattr(limits.storage.memory, "time", SimpleNamespace(time=lambda: totp_clock.now))
    return totp_clock


def _step_up(client, person, code: str) -> int:
    return submit(client, "/account/confirm",
                  {"password": person.password, "code": code}).status_code


def test_the_fifth_step_up_in_five_minutes_is_checked_and_the_sixth_refused(
    client, auth, make_client, limiter_clock
):
    """SECOND_FACTOR allows 5 tries per 5 minutes: the fifth wrong code is still checked
    (the form answers), the sixth waits even with the right code."""
    person = make_client(totp=True)
    auth.login(person)
    wrong = limiter_clock.wrong_code(person.totp_secret)
    assert [_step_up(client, person, wrong) for _ in range(5)] == [200] * 5
    limiter_clock.advance()
    refused = submit(client, "/account/confirm",
                     {"password": person.password, "code": limiter_clock.code(person.totp_secret)})
    assert refused.status_code == 429
    assert "warten" in refused.get_data(as_text=True)
    limiter_clock.advance(5 * 60)  # a new window: the right code confirms
    assert _step_up(client, person, limiter_clock.code(person.totp_secret)) == 302


def test_the_twentieth_step_up_in_a_day_is_checked_and_the_twenty_first_refused(
    client, auth, make_client, limiter_clock
):
    """SECOND_FACTOR allows 20 tries per day, five in each five minutes."""
    person = make_client(totp=True)
    auth.login(person)
    statuses = []
    for _ in range(4):
        limiter_clock.advance(5 * 60 + 1)
        wrong = limiter_clock.wrong_code(person.totp_secret)
        statuses += [_step_up(client, person, wrong) for _ in range(5)]
    assert statuses == [200] * 20
    limiter_clock.advance(5 * 60 + 1)
    assert _step_up(client, person, limiter_clock.code(person.totp_secret)) == 429
    limiter_clock.advance(24 * 60 * 60)
    assert _step_up(client, person, limiter_clock.code(person.totp_secret)) == 302


# -- a busy caseworker: right codes never add up to a refusal ---------------------------------
def _staff_step_up(browser, person, code: str) -> int:
    return submit(browser, "/staff/account/confirm",
                  {"password": person.password, "code": code}).status_code


def test_a_caseworker_signs_in_and_confirms_all_day_with_right_codes_and_is_never_refused(
    app, make_staff, limiter_clock
):
    """Forty sign-ins (each from a browser without a device cookie, as after the idle
    timeout on a shared computer) and eighty step-ups in one working day, six of them within
    five minutes: every right code is let through. Only wrong ones count."""
    caseworker = make_staff()
    login = {"email": caseworker.email, "password": caseworker.password}
    for _ in range(40):
        limiter_clock.advance(12 * 60)
        browser = app.test_client()
        assert submit(browser, "/staff/login", login).headers["Location"] == "/staff/login/code"
        signed_in = submit(browser, "/staff/login/code",
                           {"code": limiter_clock.code(caseworker.totp_secret)})
        assert signed_in.headers["Location"] == "/staff/"
        for _ in range(2):
            limiter_clock.advance()
            assert _staff_step_up(browser, caseworker,
                                  limiter_clock.code(caseworker.totp_secret)) == 302
    for _ in range(6):  # a burst of confirmations: the 5-per-5-minutes cap is for wrong codes
        limiter_clock.advance()
        assert _staff_step_up(browser, caseworker,
                              limiter_clock.code(caseworker.totp_secret)) == 302

    # Wrong codes are still limited: five are checked, then even the right one waits.
    limiter_clock.advance(5 * 60 + 1)
    wrong = limiter_clock.wrong_code(caseworker.totp_secret)
    assert [_staff_step_up(browser, caseworker, wrong) for _ in range(5)] == [200] * 5
    limiter_clock.advance()
    assert _staff_step_up(browser, caseworker, limiter_clock.code(caseworker.totp_secret)) == 429
    # A wrong password counts as well.
    limiter_clock.advance(5 * 60 + 1)
    assert [submit(browser, "/staff/account/confirm",
                   {"password": "not-the-password-at-all", "code": "123456"}).status_code
            for _ in range(5)] == [200] * 5
    assert _staff_step_up(browser, caseworker, limiter_clock.code(caseworker.totp_secret)) == 429


def test_wrong_sign_in_codes_of_a_caseworker_still_end_the_sign_in(
    app, make_staff, limiter_clock
):
    caseworker = make_staff()
    browser = app.test_client()
    login = {"email": caseworker.email, "password": caseworker.password}
    assert submit(browser, "/staff/login", login).headers["Location"] == "/staff/login/code"
    wrong = limiter_clock.wrong_code(caseworker.totp_secret)
    answers = [submit(browser, "/staff/login/code", {"code": wrong}) for _ in range(5)]
    assert [a.status_code for a in answers] == [200] * 4 + [302]
    assert answers[-1].headers["Location"].startswith("/staff/login")
    # The sign-in is over: the code page sends back to the password.
    assert browser.get("/staff/login/code").headers["Location"] == "/staff/login"
