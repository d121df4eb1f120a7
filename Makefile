# Every target creates the virtual environment itself on a fresh clone.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench bench-envs renders clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# MAML on navigation2d, several vmapped seeds, small budget; evaluates on held-out tasks and plots.
demo: $(STAMP)
	$(BIN)/python experiments/demo.py --out runs/demo

test: $(STAMP)
	$(BIN)/ruff check jaxmeta tests experiments benchmarks
	$(BIN)/python -m pytest -n 2 --dist loadfile --durations=12 tests

lint: $(STAMP)
	$(BIN)/ruff check jaxmeta tests experiments benchmarks
	$(BIN)/ruff format --check jaxmeta tests experiments benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/maml_throughput.py

# Raw simulator throughput of every task family at batch 1, 64 and 1024 (~20 min on 2 CPU cores).
bench-envs: $(STAMP)
	$(BIN)/python benchmarks/env_throughput.py

# One PNG per task family into docs/envs/ (headless OpenGL: the script defaults MUJOCO_GL=egl).
renders: $(STAMP)
	$(BIN)/python experiments/render_envs.py

clean:
	rm -rf $(VENV) runs .pytest_cache
