"""Demo data matches the README and is safe to load twice; production refuses it."""

import re
from pathlib import Path

import pyotp
import pytest

from shared import crypto
from shared.app import create_app
from tests.conftest import make_config, submit

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_demo_accounts():
    rows = re.findall(
        r"^\| [^|]+ \| (/\S*login) \| (\S+@example\.org) \| (\S+) \| (\S+) \|$",
        README.read_text(), re.MULTILINE,
    )
    assert len(rows) == 5
    return rows


def test_demo_load_twice_and_every_readme_account_signs_in(app, runner, totp_clock):
    first = runner.invoke(args=["demo", "load"])
    assert first.exit_code == 0
    # 5 accounts, services, a consent, history and a message (tests/test_demo.py)
    assert first.output.count("created: ") == 17
    second = runner.invoke(args=["demo", "load"])
    assert second.exit_code == 0
    assert second.output.count("exists") == 15  # accounts and history (tests/test_demo.py)
    for login_path, email, password, secret in readme_demo_accounts():
        browser = app.test_client()
        response = submit(browser, login_path, {"email": email, "password": password})
        assert response.status_code == 302, email
        if secret != "–":
            assert response.headers["Location"].endswith("/login/code")
            totp_clock.advance()
            response = submit(browser, response.headers["Location"],
                              {"code": pyotp.TOTP(secret).at(totp_clock.now)})
            assert response.status_code == 302
        home = "/staff/" if login_path.startswith("/staff") else "/home"
        assert browser.get(home).status_code == 200, email


def test_demo_load_refuses_in_production(database_url, tmp_path):
    app = create_app(make_config(tmp_path, database_url, env="production",
                                 ratelimit_storage_uri="redis://127.0.0.1:6379",
                                 smtp_url="smtps://mail.invalid",
                                 erasure_journal=str(tmp_path / "journal.jsonl"),
                                 seal_cert=str(tmp_path / "c.pem"),
                                 seal_key=str(tmp_path / "k.pem")))
    result = app.test_cli_runner().invoke(args=["demo", "load"])
    assert result.exit_code != 0
    assert "production" in result.output


def test_production_never_generates_keys(tmp_path):
    from shared.config import ConfigError

    with pytest.raises(ConfigError, match="EINBLICK_MASTER_KEYS"):
        create_app(make_config(tmp_path, "sqlite:///" + str(tmp_path / "x.db"), env="production",
                               master_keys=None, index_key=None, secret_key=None))
    assert not (tmp_path / "keys.json").exists()


def test_config_from_environment_validates(tmp_path):
    from shared.config import Config, ConfigError

    config = Config.from_env({"EINBLICK_ENV": "test", "EINBLICK_CLIENT_IDLE_MINUTES": "20",
                              "DATABASE_URL": "postgres://u@h/db"})
    assert config.client_idle_minutes == 20
    assert config.sqlalchemy_url == "postgresql+psycopg://u@h/db"
    with pytest.raises(ConfigError):
        Config.from_env({"EINBLICK_CLIENT_IDLE_MINUTES": "soon"})
    with pytest.raises(ConfigError):
        Config.from_env({"EINBLICK_ENV": "staging"})
    with pytest.raises(ConfigError, match="host name"):
        Config.from_env({"EINBLICK_RP_ID": "127.0.0.1"})
    secret = Config(secret_key="s3cret-value", master_keys="k:abc", smtp_url="smtps://u:pw@h")
    assert "s3cret-value" not in repr(secret)
    assert "pw@h" not in repr(secret)
    assert crypto.parse_master_keys("a:" + crypto.b64encode(b"k" * 32))[1] == "a"


def test_rotating_the_master_key_is_a_security_event(app, runner, make_client):
    from tests.conftest import security_events

    make_client()
    result = runner.invoke(args=["keys", "rotate"])
    assert result.exit_code == 0, result.output
    assert security_events(app, "keys.rotated") == [("ok", None)]
