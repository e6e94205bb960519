"""The production start refuses development defaults and demo values, and gunicorn's
access log keeps no client address, query string or single-use token."""

from __future__ import annotations

import datetime
import runpy
from pathlib import Path
from types import SimpleNamespace

from shared import crypto
from shared.production import problems

ROOT = Path(__file__).resolve().parents[2]


def live_settings(tmp_path) -> dict[str, str]:
    key = crypto.b64encode(b"\x07" * 32)
    (tmp_path / "seal-cert.pem").write_text("x")
    (tmp_path / "seal-key.pem").write_text("x")
    return {
        "EINBLICK_ENV": "production",
        "DATABASE_URL": "postgresql://einblick@db.internal/einblick",
        "EINBLICK_RATELIMIT_STORAGE_URI": "redis://redis.internal:6379/0",
        "EINBLICK_MASTER_KEYS": "k1:" + key, "EINBLICK_INDEX_KEY": key,
        "EINBLICK_SECRET_KEY": "s" * 48,
        "EINBLICK_SEAL_CERT": str(tmp_path / "seal-cert.pem"),
        "EINBLICK_SEAL_KEY": str(tmp_path / "seal-key.pem"),
        "EINBLICK_SMTP_URL": "smtp://user:pass@mail.example.org:587",
        "EINBLICK_ERASURE_JOURNAL": str(tmp_path / "journal.jsonl"),
        "EINBLICK_INSTANCE_PATH": str(tmp_path),
        "EINBLICK_MAIL_FROM": "Jugendhilfe <portal@jh.example>",
        "EINBLICK_BASE_URL": "https://portal.jh.example",
        "EINBLICK_ORIGIN": "https://portal.jh.example", "EINBLICK_RP_ID": "portal.jh.example",
        "EINBLICK_ORGANISATION_ADDRESS": "Weg 1, 12345 Berlin",
        "EINBLICK_ORGANISATION_EMAIL": "kontakt@jh.example",
        "EINBLICK_ORGANISATION_PHONE": "+49 30 555",
        "EINBLICK_IMPRINT_REPRESENTATIVE": "A. Vorstand", "EINBLICK_IMPRINT_REGISTER": "VR 1",
        "EINBLICK_PRIVACY_OFFICER": "dsb@jh.example",
    }


def test_a_complete_production_environment_passes(tmp_path):
    assert problems(live_settings(tmp_path)) == []


def test_development_defaults_and_demo_values_are_named(tmp_path):
    assert "EINBLICK_ENV=production" in problems({})[0]
    settings = live_settings(tmp_path)
    for missing in ("EINBLICK_SECRET_KEY", "EINBLICK_SMTP_URL"):
        found = problems({k: v for k, v in settings.items() if k != missing})
        assert len(found) == 1
        assert missing in found[0]
    found = problems({**settings, "DATABASE_URL": "sqlite:////srv/einblick.sqlite3",
                      "EINBLICK_SECRET_KEY": "too-short",
                      "EINBLICK_ORGANISATION_ADDRESS": "Lindenstraße 12, 10969 Berlin"})
    assert [problem.split(" ")[1] for problem in found] == [
        "DATABASE_URL", "must", "still"]
    assert "EINBLICK_ORGANISATION_ADDRESS" in found[2]
    assert problems({**settings, "EINBLICK_IMPRINT_REGISTER": "REPLACE"}) == [
        "EINBLICK_IMPRINT_REGISTER still holds REPLACE from deploy/einblick.env.example."]


def test_the_access_log_holds_no_address_query_or_token(monkeypatch):
    monkeypatch.setenv("GUNICORN_WORKERS", "2")
    monkeypatch.setenv("GUNICORN_THREADS", "4")
    settings = runpy.run_path(str(ROOT / "deploy" / "gunicorn.conf.py"))
    assert (settings["workers"], settings["worker_class"]) == (2, "gthread")
    logger = settings["AccessLogger"].__new__(settings["AccessLogger"])
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": "/reset/secret-token?next=/x",
               "PATH_INFO": "/reset/secret-token", "QUERY_STRING": "next=/x",
               "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "203.0.113.7",
               "HTTP_REFERER": "https://mail.example/inbox", "HTTP_USER_AGENT": "Phone"}
    request = SimpleNamespace(headers=[("X-Forwarded-For", "198.51.100.9")])
    response = SimpleNamespace(status="200 OK", sent=512, headers=[("Set-Cookie", "s=1")])
    atoms = logger.atoms(response, request, environ, datetime.timedelta(milliseconds=12))
    line = " ".join(str(value) for value in atoms.values())
    for secret in ("secret-token", "next=", "203.0.113.7", "198.51.100.9", "mail.example",
                   "Phone", "s=1"):
        assert secret not in line
    assert atoms["U"] == "/reset/…"
    assert atoms["r"] == "GET /reset/… HTTP/1.1"
    assert settings["redact_path"]("/staff/clients/abc") == "/staff/clients/abc"
