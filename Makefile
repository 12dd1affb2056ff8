# One place for the commands the README and .ci/run use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint typecheck fmt bench clean

# pip writes the bytecode of what it installs, but an editable install leaves src/ to the
# interpreter, which writes none where PYTHONDONTWRITEBYTECODE is set: every command would
# compile kaudit's modules again (~60 ms of each start-up). compileall only redoes changed files.
install: $(STAMP)
	@$(BIN)/python -m compileall -q src >/dev/null

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: install
	$(BIN)/kaudit demo --data ./kaudit-data

test: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

fmt: install
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

bench: install
	$(BIN)/python benchmarks/ingest.py

clean:
	rm -rf $(VENV) kaudit-data .pytest_cache .mypy_cache .ruff_cache
