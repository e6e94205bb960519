"""Production refuses to start with the foot-guns on: Flask's debugger, cookies without
Secure. HTTPS answers carry HSTS for two years, sub-domains included."""

import pytest

from shared.app import create_app
from shared.config import Config, ConfigError
from tests.conftest import TEST_KEYS, make_config


def production_environment(tmp_path, **extra: str) -> dict[str, str]:
    """Everything production asks for, so only the variable under test can be wrong."""
    return {
        "EINBLICK_ENV": "production",
        "EINBLICK_MASTER_KEYS": TEST_KEYS["master_keys"],
        "EINBLICK_INDEX_KEY": TEST_KEYS["index_key"],
        "EINBLICK_SECRET_KEY": TEST_KEYS["secret_key"],
        "EINBLICK_SEAL_CERT": str(tmp_path / "seal-cert.pem"),
        "EINBLICK_SEAL_KEY": str(tmp_path / "seal-key.pem"),
        "EINBLICK_SMTP_URL": "smtps://mail.invalid",
        "EINBLICK_ERASURE_JOURNAL": str(tmp_path / "journal.jsonl"),
        "EINBLICK_RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379",
        **extra,
    }


def test_a_complete_production_environment_is_accepted(tmp_path):
    config = Config.from_env(production_environment(tmp_path, FLASK_DEBUG="0"))
    assert config.production
    assert config.cookies_secure


@pytest.mark.parametrize("value", ["1", "true", "yes"])
def test_production_refuses_flask_debug(tmp_path, value):
    with pytest.raises(ConfigError, match="FLASK_DEBUG"):
        Config.from_env(production_environment(tmp_path, FLASK_DEBUG=value))


def test_debug_stays_possible_in_development(tmp_path):
    assert Config.from_env({"FLASK_DEBUG": "1"}).env == "development"


def test_production_app_refuses_debug_from_the_environment(database_url, tmp_path,
                                                           monkeypatch):
    """A config built in code (not from the environment) is refused too: Flask itself
    switches the debugger on from FLASK_DEBUG."""
    monkeypatch.setenv("FLASK_DEBUG", "1")
    config = make_config(tmp_path, database_url, env="production",
                         ratelimit_storage_uri="redis://127.0.0.1:6379",
                         smtp_url="smtps://mail.invalid",
                         erasure_journal=str(tmp_path / "journal.jsonl"),
                         seal_cert=str(tmp_path / "c.pem"), seal_key=str(tmp_path / "k.pem"))
    with pytest.raises(ConfigError, match="FLASK_DEBUG"):
        create_app(config)


@pytest.mark.parametrize("value", ["0", "false", "off"])
def test_production_refuses_cookies_without_secure(tmp_path, value):
    with pytest.raises(ConfigError, match="EINBLICK_SECURE_COOKIES"):
        Config.from_env(production_environment(tmp_path, EINBLICK_SECURE_COOKIES=value))


def test_https_answers_ask_for_https_for_two_years_with_sub_domains(database_url, tmp_path):
    app = create_app(make_config(tmp_path, database_url, secure_cookies=True))
    https = app.test_client()
    response = https.get("https://localhost/login")
    assert response.headers["Strict-Transport-Security"] == (
        "max-age=63072000; includeSubDomains")


def test_the_cap_on_open_requests_per_account_is_read_and_checked():
    assert Config.from_env({"EINBLICK_MAX_OPEN_REQUESTS_PER_ACCOUNT": "9"}) \
        .max_open_requests_per_account == 9
    with pytest.raises(ConfigError, match="EINBLICK_MAX_OPEN_REQUESTS_PER_ACCOUNT must be 1"):
        Config.from_env({"EINBLICK_MAX_OPEN_REQUESTS_PER_ACCOUNT": "0"})


def test_the_recovery_wait_is_read_and_never_shorter_than_a_day():
    """A shorter wait would leave a client too little time to see and cancel a recovery."""
    assert Config.from_env({"EINBLICK_RECOVERY_WAIT_HOURS": "48"}).recovery_wait_hours == 48
    assert Config.from_env({"EINBLICK_RECOVERY_WAIT_HOURS": "24"}).recovery_wait_hours == 24
    with pytest.raises(ConfigError, match="EINBLICK_RECOVERY_WAIT_HOURS must be 24 or more"):
        Config.from_env({"EINBLICK_RECOVERY_WAIT_HOURS": "23"})
