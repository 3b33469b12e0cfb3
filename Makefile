# README's two commands: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DOC ?= data/the_lighthouse_keeper.md

export PREFECT_HOME ?= $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 120
export PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW := ignore

.PHONY: run test lint eval bench clean install

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/tome summarise $(DOC)

test: $(STAMP)
	$(BIN)/ruff check pipeline flows tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q $(PYTEST_ARGS)

# Summary quality on the project's sample set (any dataset: make eval DATASET=path.jsonl).
DATASET ?= data/eval_sample.jsonl
eval: $(STAMP)
	$(BIN)/tome eval $(DATASET)

lint: $(STAMP)
	$(BIN)/ruff check pipeline flows tests bench
	$(BIN)/mypy

clean:
	-[ -x $(BIN)/tome ] && $(BIN)/tome server stop  # tome's background Prefect server keeps its database in .prefect
	rm -rf $(VENV) .prefect .pytest_cache
