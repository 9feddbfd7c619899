# The two README commands, `make demo` and `make test`, each do all set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.install-stamp
TEST_STAMP := $(VENV)/.test-extras-stamp
# `make install`: the package, the test runner and the built-in sample photos: what `make demo`
# needs and what the test suite needs to run (tests of a missing heavy extra skip).
EXTRAS := dev,sample
# The heavy optional extras, only for the tests that exercise them; `make test` (CI, fresh clone)
# adds them so the whole suite runs.
TEST_EXTRAS := lmdb,export,sweep,slurm
PYTEST_ARGS ?= -n 2

.PHONY: install test demo bench lint format clean

install: $(STAMP)

# Re-runs only when pyproject.toml changes (or the venv is missing).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -e '.[$(EXTRAS)]'
	$(BIN)/python -c "import torch, torchvision, lightning, hydra, esrgan_lit; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install -e '.[$(EXTRAS),$(TEST_EXTRAS)]'
	touch $(TEST_STAMP)

test: $(TEST_STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: install
	$(BIN)/python -m esrgan_lit.demo

bench: install
	@set -e; for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f; done

lint: install
	$(BIN)/ruff check src tests benchmarks notebooks
	$(BIN)/ruff format --check src tests benchmarks notebooks

format: install
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

clean:
	rm -rf $(VENV) outputs multirun lightning_logs wandb build dist .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
