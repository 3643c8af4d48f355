PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test browser demo fmt lint bench-callbacks bench-followers bench-startup bench-outbox bench-alerts bench-reports bench clean docs

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

# The binding page's browser test drives Debian's chromium and chromium-driver: installed when
# missing and apt-get can (as root, or by sudo without a password); else that test is skipped.
browser:
	@command -v chromedriver >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get install -y -q chromium chromium-driver; \
	  else sudo -n apt-get install -y -q chromium chromium-driver; fi; } >/dev/null 2>&1 || \
	  echo "chromium and chromium-driver could not be installed: the browser test will be skipped"

# Two workers (tests marked serial, which measure time, run alone afterwards).
test: $(STAMP) browser
	$(BIN)/ruff format --check bankwx_cli tests bench
	$(BIN)/ruff check bankwx_cli tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	HYPOTHESIS_PROFILE=ci $(BIN)/pytest -q -p no:cacheprovider -n 2 -m "not serial"
	HYPOTHESIS_PROFILE=ci $(BIN)/pytest -q -p no:cacheprovider -m serial

demo: $(STAMP)
	$(BIN)/bankwx demo

# The receiver against a bare ASGI ceiling and wechatpy on bare ASGI (bench/callbacks/README.md).
# Options after ARGS=, for example: make bench-callbacks ARGS="--runs 2"
bench-callbacks: $(STAMP)
	$(BIN)/python bench/callbacks/run.py $(ARGS)

# `bankwx follower sync` of 1,000,000 simulated followers against a bare client's ceiling.
# Options after ARGS=, for example: make bench-followers ARGS="--followers 200000 --threads 4"
bench-followers: $(STAMP)
	$(BIN)/python bench/followers/bench_followers.py $(ARGS)

# A 100,000-follower template broadcast through `bankwx outbox run` against a bare client's
# ceiling (bench/README.md). Options after ARGS=, for example: make bench-outbox ARGS="--followers 5000"
bench-outbox: $(STAMP)
	$(BIN)/python bench/outbox/bench_outbox.py $(ARGS)

# Alerts (issue 17): (a) the intake at a steady rate, (b) a broadcast with alerts meanwhile,
# (c) callbacks with and without (a)'s load, each against the simulator's ceiling
# (bench/README.md). Options after ARGS=, for example: make bench-alerts ARGS="--scale small"
bench-alerts: $(STAMP)
	$(BIN)/python bench/alerts/bench_alerts.py $(ARGS)

# Every report for a month and a year of generated traffic (10,000,000 messages, 1,000,000
# followers), inside the process, as a command and against a bare scan (bench/README.md).
# Options after ARGS=, for example: make bench-reports ARGS="--scale 0.01"
bench-reports: $(STAMP)
	$(BIN)/python bench/reports/bench_reports.py $(ARGS)

# `bankwx --version` and `bankwx account list` against `python -c "import typer"` (issue 13).
# Options after ARGS=, for example: make bench-startup ARGS="--runs 20"
bench-startup: $(STAMP)
	$(BIN)/python bench/startup/run.py $(ARGS)

fmt: $(STAMP)
	$(BIN)/ruff format bankwx_cli tests bench
	$(BIN)/ruff check --fix bankwx_cli tests bench

docs: $(STAMP)
	$(BIN)/typer bankwx_cli.main utils docs --name bankwx --output docs/cli.md

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
