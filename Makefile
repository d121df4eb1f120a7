# Every target creates the virtual environment itself on a fresh clone.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench bench-full bench-maml bench-tesp bench-protocol bench-envs bench-backends bench-context renders tesp-small maml-small vate-small pearl-small bench-offpolicy metagrad-small bench-metagrad maesn-small bench-maesn epg-small bench-epg clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# MAML on navigation2d, several vmapped seeds, small budget; evaluates on held-out tasks and plots.
demo: $(STAMP)
	$(BIN)/python experiments/demo.py --out runs/demo

# Three pytest processes, because XLA reads its flags once, when it starts:
# - the suite, compiled at XLA's backend optimisation level 0: compilation dominates these
#   tiny programs and level 0 halves it; every tolerance and learning margin holds there;
# - the tests marked `golden`, at XLA's default flags (the compiler users run), since they
#   compare numbers bit for bit with values recorded there (xdist groups keep each golden
#   entry's programs in one worker);
# - tests/test_learning.py alone: XLA segfaulted compiling its trainer programs inside an
#   xdist worker (3 full runs out of 3 on 2026-11-23, never in a process of its own);
# - the sharding tests, which need 4 (virtual) devices. The main suite --ignore's the file;
#   under a plain `pytest` (one device) its test_sharding_suite_runs_with_four_devices starts
#   this same process itself, so the tests are neither skipped silently nor run twice here.
TEST_XLA := --xla_backend_optimization_level=0
test: $(STAMP)
	$(BIN)/ruff check jaxmeta tests experiments benchmarks
	XLA_FLAGS=$(TEST_XLA) $(BIN)/python -m pytest -n 2 --dist loadfile --durations=15 \
	  -m "not golden" --ignore=tests/test_sharding.py --ignore=tests/test_learning.py tests
	XLA_FLAGS=$(TEST_XLA) $(BIN)/python -m pytest --durations=5 tests/test_learning.py
	$(BIN)/python -m pytest -n 2 --dist loadgroup --durations=5 -m golden \
	  --ignore=tests/test_sharding.py tests
	XLA_FLAGS="$(TEST_XLA) --xla_force_host_platform_device_count=4" \
	  $(BIN)/python -m pytest --durations=5 tests/test_sharding.py

lint: $(STAMP)
	$(BIN)/ruff check jaxmeta tests experiments benchmarks
	$(BIN)/ruff format --check jaxmeta tests experiments benchmarks

# The benchmark suite (python -m jaxmeta bench --preset NAME): JSON and PNG go to
# benchmarks/results/, the tables into benchmarks/RESULTS.md.
# One row of each kind (~5 min on a 2-core CPU).
bench: $(STAMP)
	$(BIN)/python -m jaxmeta bench --preset quick --record benchmarks/RESULTS.md

# The full suite: meant for a GPU (hours on a CPU).
bench-full: $(STAMP)
	$(BIN)/python -m jaxmeta bench --preset full --record benchmarks/RESULTS.md

# MAML's navigation2d throughput at the paper's sizes, and second-order memory vs K.
bench-maml: $(STAMP)
	$(BIN)/python -m jaxmeta bench --preset maml_throughput --record benchmarks/RESULTS.md

# TESP vs MAML meta-training throughput on reacher2_target at the small preset (~5 min).
bench-tesp: $(STAMP)
	$(BIN)/python -m jaxmeta bench --preset tesp_throughput --record benchmarks/RESULTS.md

# The MAML paper's half-cheetah protocol end to end through the trainer (a GPU job: 160 M
# env steps; --resume continues it from its last checkpoint).
bench-protocol: $(STAMP)
	$(BIN)/python -m jaxmeta bench --preset maml_protocol --record benchmarks/RESULTS.md

# TESP's experiments at the small scale on a CPU (Fig. 4 for the four families, Fig. 5 on
# reacher2_target), then figures and tables. On 2 cores with C MuJoCo: 5-12 min per family
# and ~14 min for the ablation.
tesp-small: $(STAMP)
	for f in reacher2_target wheeled_goal reacher4_target ant_target; do \
	  $(BIN)/python experiments/tesp/run.py --family $$f --scale small || exit 1; done
	$(BIN)/python experiments/tesp/run.py --family reacher2_target --scale small --ablation
	$(BIN)/python experiments/tesp/report.py --scale small

# MAML's half-cheetah experiment (Fig. 5: 0-3 gradient steps vs pretrained, random, oracle)
# at the small scale on a CPU with C MuJoCo, then figures and table (~1.5 h on 2 cores, one
# family after the other).
maml-small: $(STAMP)
	for f in halfcheetah_vel halfcheetah_dir; do \
	  $(BIN)/python experiments/maml/run.py --family $$f --scale small || exit 1; done
	$(BIN)/python experiments/maml/report.py --scale small

# VATE's gridworld experiment (RL², VATE, its ablations and variBAD; 3 seeds x 2500 updates)
# and RL² vs VATE on halfcheetah_vel, then figures, tables and the belief picture
# (~1 h on 2 CPU cores).
vate-small: $(STAMP)
	$(BIN)/python experiments/vate/run.py --family gridworld --scale small
	$(BIN)/python experiments/vate/run.py --family halfcheetah_vel --scale small --methods rl2,vate
	$(BIN)/python experiments/vate/report.py --results experiments/vate/results/gridworld_small.json
	$(BIN)/python experiments/vate/report.py --results experiments/vate/results/halfcheetah_vel_small.json
	$(BIN)/python experiments/vate/belief.py --run runs/vate/gridworld_small/vate \
	  --out experiments/vate/results/belief_gridworld.png

# PEARL against MAML (TRPO) and RL² on sparse 2D navigation and PEARL's half-cheetah
# velocity, at the small scale on a CPU (C MuJoCo), then figures and tables (~2 h on 2 cores).
pearl-small: $(STAMP)
	for f in navigation2d_sparse halfcheetah_vel_pearl; do \
	  $(BIN)/python experiments/pearl/run.py --family $$f --scale small || exit 1; \
	  $(BIN)/python experiments/pearl/report.py \
	    --results experiments/pearl/results/$${f}_small.json || exit 1; done

# SAC and PEARL training throughput (1 and 4 seeds, where the time goes, compile) and Brax's
# SAC against jaxmeta's on one navigation2d task (~10 min on 2 cores).
bench-offpolicy: $(STAMP)
	$(BIN)/python -m jaxmeta bench --preset offpolicy --record benchmarks/RESULTS.md

# Meta-gradient RL: learned (γ, λ) against fixed ones on 2D navigation and the
# half-cheetah velocity family, at the small scale on a CPU (C MuJoCo), then figures and
# tables (~40 min on 2 cores).
metagrad-small: $(STAMP)
	for f in navigation2d halfcheetah_vel; do \
	  $(BIN)/python experiments/seed002/metagrad/run.py --family $$f --scale small || exit 1; \
	  $(BIN)/python experiments/seed002/metagrad/report.py \
	    --results experiments/seed002/metagrad/results/$${f}_small.json || exit 1; done

# Meta-gradient A2C against the same A2C with γ, λ fixed, and the raw simulator
# (halfcheetah_vel, 2 seeds; ~1 min on 2 cores).
bench-metagrad: $(STAMP)
	$(BIN)/python -m jaxmeta bench --preset metagrad --record benchmarks/RESULTS.md

# MAESN, its LatentSpace baseline and MAML on sparse 2D navigation (meta-trained on the
# dense reward, adapted on the sparse one), then figure and table (~10 min on 2 cores).
maesn-small: $(STAMP)
	$(BIN)/python experiments/seed002/maesn/run.py --scale small
	$(BIN)/python experiments/seed002/maesn/report.py \
	  --results experiments/seed002/maesn/results/navigation2d_sparse_small.json

# MAESN, LatentSpace and MAML meta-training throughput and compile time at the experiment's
# sizes (5 seeds; ~3 min on 2 cores).
bench-maesn: $(STAMP)
	$(BIN)/python -m jaxmeta bench --preset maesn --record benchmarks/RESULTS.md

# EPG: the ES fitness and fresh policies trained with the evolved loss against the
# policy-gradient loss, on held-out and out-of-distribution goals (~5 min on 2 cores).
epg-small: $(STAMP)
	$(BIN)/python experiments/seed002/epg/run.py --scale small
	$(BIN)/python experiments/seed002/epg/report.py \
	  --results experiments/seed002/epg/results/navigation2d_small.json

# EPG generations at population 8 / 32 / 128 (parallel efficiency), its PG baseline and
# compile time (~5 min on 2 cores).
bench-epg: $(STAMP)
	$(BIN)/python -m jaxmeta bench --preset epg --record benchmarks/RESULTS.md

# RL² and VATE meta-training throughput on gridworld and halfcheetah_vel (~10 min on 2 cores).
bench-context: $(STAMP)
	$(BIN)/python -m jaxmeta bench --preset context_gridworld --record benchmarks/RESULTS.md
	$(BIN)/python -m jaxmeta bench --preset context_cheetah --record benchmarks/RESULTS.md

# Raw simulator throughput of every task family at batch 1, 64 and 1024 (~20 min on 2 CPU cores).
bench-envs: $(STAMP)
	$(BIN)/python -m jaxmeta bench --preset env_throughput --record benchmarks/RESULTS.md

# C MuJoCo against MJX side by side: every MuJoCo family's raw simulator at B = 1/64/1024,
# MAML and the oracle meta-training on the half-cheetah, compile time (~30 min on 2 cores).
bench-backends: $(STAMP)
	$(BIN)/python -m jaxmeta bench --preset backends --record benchmarks/RESULTS.md

# One PNG per task family into docs/envs/ (headless OpenGL: the script defaults MUJOCO_GL=egl).
renders: $(STAMP)
	$(BIN)/python experiments/render_envs.py

clean:
	rm -rf $(VENV) runs .pytest_cache
