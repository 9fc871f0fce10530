# scaleready: `make loadtest` audits the bundled demo, `make test` runs the harness's own tests.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PACK   ?= scenarios/booking
ARGS   ?=

.PHONY: install loadtest quick test test-nightly lint selftest selftest-postgres bench browser postgresql clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

# Headless Chromium from Debian's packages, for the HTML report's browser tests and --pdf;
# poppler-utils (pdftotext) for the test that reads the PDF's page numbers.
browser:
	@command -v chromium >/dev/null 2>&1 && command -v pdftotext >/dev/null 2>&1 || { \
	  echo "installing chromium and poppler-utils (Debian packages) for the report's browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium poppler-utils >/dev/null; }

# Debian's PostgreSQL server binaries (initdb, postgres) for the production-shaped profiles
# (`--profile postgres`, harness/database.py): the harness runs them itself, in a throwaway
# data directory; the package's system service is neither needed nor used.
postgresql:
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  echo "installing Debian's postgresql package for the PostgreSQL-backed profiles"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

loadtest: install
	$(VENV)/bin/scaleready audit $(PACK) $(ARGS)

quick: install
	$(VENV)/bin/scaleready audit $(PACK) --profile quick $(ARGS)

lint: install
	$(VENV)/bin/ruff check harness tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

test: install browser postgresql lint
	$(PY) -m pytest

# Everything, including the slow full-size runs (the nightly CI job).
test-nightly: install browser postgresql lint
	$(PY) -m pytest -m "slow or not slow"

selftest: install
	$(VENV)/bin/scaleready selftest $(ARGS)

# The matrix on the production shape: 2 worker processes against a throwaway PostgreSQL server.
selftest-postgres: install postgresql
	$(VENV)/bin/scaleready selftest --profile selftest-postgres $(ARGS)

bench: install
	$(PY) benchmarks/fidelity.py

clean:
	rm -rf $(VENV) reports .mypy_cache .ruff_cache
