"""gunicorn settings for Einblick: `gunicorn -c deploy/gunicorn.conf.py wsgi:app`
(`make prod` and deploy/systemd/einblick.service run exactly this).

Environment (besides the app's own EINBLICK_* variables, README "Configuration"):

GUNICORN_BIND        where to listen (default 127.0.0.1:8000: only the reverse proxy on
                     this machine reaches the workers; it terminates HTTPS)
GUNICORN_WORKERS     worker processes (default 2 per CPU core; each holds its own pool of
                     database connections: workers x 5 must stay below PostgreSQL's
                     max_connections)
GUNICORN_THREADS     threads per worker (default 1: sync workers; 2 or more: gthread,
                     which helps while requests wait on the database or SMTP)
GUNICORN_TIMEOUT     seconds a request may take before its worker is restarted (default 60)
GUNICORN_FORWARDED_ALLOW_IPS
                     proxies whose X-Forwarded-Proto gunicorn believes (default
                     127.0.0.1,::1). The client's address for rate limits comes from
                     X-Forwarded-For through EINBLICK_TRUSTED_PROXIES (number of proxies in
                     front, usually 1). Never "*" unless nothing but the proxy can reach
                     GUNICORN_BIND: anyone could otherwise choose the address rate limits count.

The access log (stdout: the journal with systemd) has time, method, path, status, size and
duration only: no client address, no query string, no referrer, no browser, and the
single-use tokens in paths (/confirm/…, /reset/…, /invitation/…) are replaced by "…".
The probes /healthz and /readyz are not logged.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import sys
from pathlib import Path

from gunicorn.glogging import Logger

# The app's code, whichever directory gunicorn was started from.
ROOT = Path(__file__).resolve().parent.parent
chdir = str(ROOT)
sys.path.insert(0, str(ROOT))

wsgi_app = "wsgi:app"
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000").split(",")
workers = int(os.environ.get("GUNICORN_WORKERS") or 2 * multiprocessing.cpu_count())
threads = int(os.environ.get("GUNICORN_THREADS") or 1)
worker_class = "gthread" if threads > 1 else "sync"
timeout = int(os.environ.get("GUNICORN_TIMEOUT") or 60)
graceful_timeout = 30
keepalive = 5
# A worker is replaced after this many requests (spread out), so slow growth of memory
# never adds up; sessions and counters live in PostgreSQL and Redis, so nothing is lost.
max_requests = 2000
max_requests_jitter = 200
# Each worker builds its own app (keys, database pool, erasure journal check) after the
# fork: database connections are never shared between processes.
preload_app = False
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
proxy_allow_ips = forwarded_allow_ips
# Request sizes: the app allows uploads up to 20 MB itself; headers stay small.
limit_request_line = 4094
limit_request_fields = 100
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
access_log_format = '%(t)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'
proc_name = "einblick"

PROBES = ("/healthz", "/readyz")
TOKEN_PATH = re.compile(r"^/(confirm|reset|invitation|staff/invitation)/[^/]+")


def redact_path(path: str) -> str:
    """The path without single-use tokens (a token in a log could be used by its reader)."""
    return TOKEN_PATH.sub(lambda match: f"/{match[1]}/…", path or "-")


class AccessLogger(Logger):
    """gunicorn's logger, with access lines that hold no personal data or tokens, whatever
    access_log_format asks for."""

    def access(self, resp, req, environ, request_time):
        if environ.get("PATH_INFO") in PROBES:
            return
        super().access(resp, req, environ, request_time)

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        path = redact_path(environ.get("PATH_INFO", ""))
        safe = {key: value for key, value in atoms.items() if not key.startswith("{")}
        safe.update(h="-", u="-", q="-", f="-", a="-", U=path,
                    r=f"{environ.get('REQUEST_METHOD')} {path} {environ.get('SERVER_PROTOCOL')}")
        return safe


logger_class = AccessLogger


def on_starting(server):
    """Refuse to start with development defaults or demo values (shared/production.py)."""
    from shared.production import problems

    found = problems()
    if found:
        for problem in found:
            server.log.error("einblick: not starting: %s", problem)
        sys.exit(1)
