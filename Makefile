# Einblick: `make run` sets up and serves the portal; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FLASK := $(BIN)/flask --app wsgi
LOCALES := de en tr ar uk
MO_FILES := $(foreach l,$(LOCALES),translations/$(l)/LC_MESSAGES/messages.mo)

.PHONY: run test lint install translations extract migrate demo bench mutate prod clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

translations/%/LC_MESSAGES/messages.mo: translations/%/LC_MESSAGES/messages.po $(STAMP)
	$(BIN)/pybabel compile --use-fuzzy=false -d translations -l $* 2>/dev/null || $(BIN)/pybabel compile -d translations -l $*

translations: $(MO_FILES)

# Re-extract message ids after changing texts; then translate translations/{de,tr,ar,uk}.
extract: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -o translations/messages.pot --no-location --sort-output .
	$(BIN)/pybabel update -i translations/messages.pot -d translations --no-fuzzy-matching --ignore-obsolete
	$(BIN)/python scripts/fill_english_catalogue.py

migrate: install translations
	$(FLASK) db upgrade

demo: migrate
	$(FLASK) demo load

run: demo
	@echo ""
	@echo "  Einblick is running: open http://localhost:5000"
	@echo "  (use localhost, not 127.0.0.1: passkeys need a host name)"
	@echo ""
	EINBLICK_ENV=$${EINBLICK_ENV:-development} $(FLASK) run --host 127.0.0.1 --port 5000

# Production (README "Production"): gunicorn with deploy/gunicorn.conf.py against
# PostgreSQL and Redis, after the migrations. The environment must hold the production
# settings (e.g. `set -a; . /etc/einblick/einblick.env; set +a`); with development
# defaults or demo values it names what is missing and does not start.
prod: install translations
	@EINBLICK_ENV=production $(BIN)/python -m shared.production
	EINBLICK_ENV=production $(FLASK) db upgrade
	EINBLICK_ENV=production exec $(BIN)/gunicorn -c deploy/gunicorn.conf.py

test: install translations
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .

# SQL statements and time per request of the list pages at 10, 50 and 200 rows (SQLite, or
# a fresh database on the server in DATABASE_URL), then the export of a large client; on
# PostgreSQL also the scale benchmark (README "Benchmarks").
bench: install translations
	$(BIN)/python bench/statements_bench.py
	$(BIN)/python bench/export_bench.py
	@case "$$DATABASE_URL" in postgres*) $(BIN)/python bench/scale_bench.py $(BENCH_ARGS);; \
	  *) echo "bench/scale_bench.py skipped: the scale benchmark runs on PostgreSQL only (DATABASE_URL)";; esac

# Organisation scale (issue 16): 1 k and 10 k clients (BENCH_SCALE=100000 adds 100 k), each
# size in a database of its own on the PostgreSQL server in DATABASE_URL.
.PHONY: bench-scale
bench-scale: install translations
	$(BIN)/python bench/scale_bench.py $(BENCH_ARGS)

# Mutation testing of the security-critical modules ([tool.mutmut] in pyproject.toml), on
# SQLite. Results stay in mutants/: a second run retests only what changed since.
# Limit it with e.g. MUTANTS='shared.crypto.*'; the report lists what was not killed.
mutate: install translations
	env -u DATABASE_URL $(BIN)/mutmut run $(MUTANTS)
	$(BIN)/python scripts/mutation_report.py

clean:
	rm -rf $(VENV) .pytest_cache mutants
