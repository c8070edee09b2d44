# One command for each job; each sets up .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test soak lint fmt bench bench-open-loop bench-sync bench-ingest bench-members bench-member-checkout bench-member-sync bench-pricing bench-promotions-scan clean

$(STAMP): pyproject.toml
	@echo "==> creating $(VENV) with $$($(PY) --version)"
	$(PY) -m venv $(VENV)
	@echo "==> installing the project and its tools into $(VENV) (pip; about a minute the first time)"
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --progress-bar off -e '.[dev]'
	@$(BIN)/python -m pip list --format=freeze 2>/dev/null | grep -iE '^(flask|sqlalchemy|granian|pydantic|psycopg|pytest|hypothesis|schemathesis)==' | sed 's/^/    /'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/aisle demo --serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

# The screen tests drive Debian's Chromium (with a CJK font for the Chinese text).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@echo "==> installing Debian's chromium and a CJK font for the screen tests (apt-get)"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-zenhei >/dev/null

# Two workers: most tests wait on servers, sockets and fsync, so two share the 2 cores well.
test: lint $(CHROMIUM)
	$(BIN)/python -m pytest -q -n 2 --dist worksteal

# The long runs of the tests that explore: many power cuts under a trading server, and many
# more runs of the sync, payment, points-ledger and three-store members state machines (about
# an hour).
soak: $(STAMP)
	AISLE_TEST_POWER_CUTS=$${AISLE_TEST_POWER_CUTS:-40} AISLE_TEST_STATEFUL_EXAMPLES=$${AISLE_TEST_STATEFUL_EXAMPLES:-200} \
		AISLE_TEST_KILLS=$${AISLE_TEST_KILLS:-100} \
		$(BIN)/python -m pytest -q -p no:cacheprovider --timeout=5400 --durations=0 \
		tests/sync/test_power_loss.py tests/sync/test_sync_state_machine.py \
		tests/integration/test_payment_intents.py tests/cloud/test_points_ledger.py \
		tests/sync/test_members_state_machine.py \
		"tests/sync/test_crash_faults.py::test_random_kills_of_the_store_mid_sync"

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python bench/run_checkout_bench.py

# Hundreds of devices at a fixed rate, beside idle and dripping connections (about 20 minutes).
bench-open-loop: $(STAMP)
	$(BIN)/python bench/run_open_loop_bench.py

# Three days of a store's sales drained into the cloud on PostgreSQL (AISLE_TEST_POSTGRES_URL).
bench-sync: $(STAMP)
	$(BIN)/python bench/run_sync_bench.py

# Cloud ingest from an empty PostgreSQL database to ten million sale lines, never analyzed
# (about half an hour; `python bench/run_ingest_scale_bench.py --batches 100` takes a minute).
bench-ingest: $(STAMP)
	$(BIN)/python bench/run_ingest_scale_bench.py

# A million members on PostgreSQL, looked up by phone over HTTP (about four minutes; needs wrk).
bench-members: $(STAMP)
	$(BIN)/python bench/run_members_bench.py

bench-member-checkout: $(STAMP)
	$(BIN)/python bench/run_member_checkout_bench.py

bench-member-sync: $(STAMP)
	$(BIN)/python bench/run_member_sync_bench.py

# The promotion engine alone: a 100-line cart under 200 promotions (a few seconds).
bench-pricing: $(STAMP)
	$(BIN)/python bench/run_pricing_bench.py

# Scan throughput with and without 200 promotions, alternating (about four minutes; wrk).
bench-promotions-scan: $(STAMP)
	$(BIN)/python bench/run_promotions_scan_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
