# txmon: `make run` starts the monitor on an embedded broker; `make test` runs every test.
# Both do all set-up first (venv, Python packages, Kafka and Spark jars) and are safe to repeat.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup jars run test test-fast lint bench clean

setup: $(STAMP) jars

$(STAMP): pyproject.toml
	@scripts/check-prerequisites
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[spark,postgres,dev]'
	@touch $@

jars: $(STAMP)
	@$(BIN)/python -m txmon_core.jars
	@# An optimisation only: a failure here leaves the jobs starting as before.
	-@$(BIN)/python -m spark_app.class_archive

run: setup
	$(BIN)/txmon-tui $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

test: setup
	@scripts/check-prerequisites --tests
	$(BIN)/ruff check .
	$(BIN)/pytest $(PYTEST_ARGS)

# The tests that start no JVM (no Kafka broker, no Spark), in under two minutes: docs/development.md.
test-fast: setup
	$(BIN)/ruff check .
	PYTEST=$(BIN)/pytest scripts/test-fast $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
