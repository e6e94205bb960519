#!/usr/bin/env bash
# CI: start the production set-up (`make prod`: gunicorn with 2 workers, PostgreSQL,
# Redis, production settings) on a free port with its own database and the demo data,
# then run one browser journey against it (tests/prod) and check the access log holds no
# client address or query string. Cleans up after itself; exit status is the journey's.
set -euo pipefail
cd "$(dirname "$0")/.."

PG=${EINBLICK_PROD_PG:-postgresql://postgres@127.0.0.1:5432}
REDIS=${EINBLICK_PROD_REDIS:-redis://127.0.0.1:6379/13}
work=$(mktemp -d)
name="einblick_prod_ci_$$"
port=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
server=""
make_pid=""

cleanup() {
  if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then
    kill -TERM "$server"  # gunicorn's master: stops its workers and exits
  fi
  if [ -n "$make_pid" ]; then wait "$make_pid" 2>/dev/null || true; fi
  .venv/bin/python - "$PG" "$name" <<'EOF' || true
import sys
from sqlalchemy import create_engine, text
engine = create_engine(sys.argv[1].replace("postgresql://", "postgresql+psycopg://", 1)
                       + "/postgres", isolation_level="AUTOCOMMIT")
with engine.connect() as conn:
    conn.execute(text(f'DROP DATABASE IF EXISTS "{sys.argv[2]}" WITH (FORCE)'))
EOF
  rm -rf "$work"
}
trap cleanup EXIT

.venv/bin/python - "$PG" "$name" <<'EOF'
import sys
from sqlalchemy import create_engine, text
engine = create_engine(sys.argv[1].replace("postgresql://", "postgresql+psycopg://", 1)
                       + "/postgres", isolation_level="AUTOCOMMIT")
with engine.connect() as conn:
    conn.execute(text(f'CREATE DATABASE "{sys.argv[2]}"'))
EOF

key() { .venv/bin/python -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())'; }
export DATABASE_URL="$PG/$name"
export EINBLICK_INSTANCE_PATH="$work/instance"
export EINBLICK_MASTER_KEYS="ci1:$(key)"
export EINBLICK_INDEX_KEY="$(key)"
export EINBLICK_SECRET_KEY="$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(48))')"
export EINBLICK_RATELIMIT_STORAGE_URI="$REDIS"
export EINBLICK_ORGANISATION_SLUG="ci-prod-$$"
export EINBLICK_ERASURE_JOURNAL="$work/erasure-journal.jsonl"
export EINBLICK_AUDIT_ANCHOR="$work/audit-anchor.json"
export EINBLICK_SECURITY_LOG="$work/security-events.jsonl"
export EINBLICK_BASE_URL="http://localhost:$port" EINBLICK_ORIGIN="http://localhost:$port"
export EINBLICK_RP_ID=localhost
# Nothing listens there: mail goes out in the background and its failure is only logged.
export EINBLICK_SMTP_URL="smtp+insecure://127.0.0.1:9"
export EINBLICK_ORGANISATION_ADDRESS="Teststraße 1, 10115 Berlin"
export EINBLICK_ORGANISATION_EMAIL="kontakt@ci.example" EINBLICK_ORGANISATION_PHONE="+49 30 7654321"
export EINBLICK_IMPRINT_REPRESENTATIVE="CI" EINBLICK_IMPRINT_REGISTER="-"
export EINBLICK_PRIVACY_OFFICER="datenschutz@ci.example" EINBLICK_MAIL_FROM="CI <portal@ci.example>"
export GUNICORN_BIND="127.0.0.1:$port" GUNICORN_WORKERS=2

echo "-- production refuses development defaults ($(date -u +%T))"
if env -u EINBLICK_SECRET_KEY make --no-print-directory prod >"$work/refused.log" 2>&1; then
  echo "make prod started without EINBLICK_SECRET_KEY"; exit 1
fi
grep -q "EINBLICK_SECRET_KEY" "$work/refused.log" || { cat "$work/refused.log"; exit 1; }

echo "-- demo data (a development command), then make prod on port $port ($(date -u +%T))"
dev() { env -u EINBLICK_SMTP_URL EINBLICK_ENV=development .venv/bin/flask --app wsgi "$@"; }
dev db upgrade >/dev/null
dev demo load >/dev/null
# The seal the development start made: production is given it as files.
export EINBLICK_SEAL_CERT="$EINBLICK_INSTANCE_PATH/seal-cert.pem"
export EINBLICK_SEAL_KEY="$EINBLICK_INSTANCE_PATH/seal-key.pem"
GUNICORN_CMD_ARGS="--pid $work/gunicorn.pid" make --no-print-directory prod \
  >"$work/access.log" 2>"$work/error.log" &
make_pid=$!
ready() {
  .venv/bin/python -c 'import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' \
    "http://127.0.0.1:$port/readyz" 2>/dev/null
}
for _ in $(seq 1 120); do
  [ -s "$work/gunicorn.pid" ] && ready >/dev/null && break
  sleep 1
done
server=$(cat "$work/gunicorn.pid" 2>/dev/null || true)
if ! ready; then
  echo "production set-up did not become ready"; cat "$work/error.log"; exit 1
fi
workers=$( (grep -lE "^PPid:\s+$server\$" /proc/[0-9]*/status 2>/dev/null || true) | wc -l)
[ "$workers" = 2 ] || { echo "expected 2 workers, found $workers"; exit 1; }

echo "-- one browser journey against it ($(date -u +%T))"
status=0
EINBLICK_PROD_URL="http://localhost:$port" .venv/bin/pytest -q -p no:cacheprovider tests/prod \
  || status=1
if grep -E '\?|127\.0\.0\.1|::1' "$work/access.log"; then
  echo "the access log holds a query string or a client address"; status=1
fi
grep -q '"GET /bookings' "$work/access.log" || { echo "no access log lines"; status=1; }
echo "-- the access log's first lines"
grep -m 3 '"GET ' "$work/access.log"
[ "$status" = 0 ] || { echo "-- gunicorn's log"; tail -50 "$work/error.log"; }
exit "$status"
