# Two entry points on a fresh machine (see README):
#   make run    set up .venv and train a small network on Yin-Yang
#   make test   set up .venv and run the whole test suite (slow tests included, GPU tests skipped)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup run test test-fast lint gpu-check

setup: $(STAMP)

# constraints.txt pins torch to the local CPU wheel, so no CUDA packages are pulled.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
	touch $(STAMP)

# the tests also need the datasets extra (tonic, h5py): tests/test_neuromorphic.py runs
# tonic's real loaders on fixture files; the plot extra (matplotlib) for the PNG
# leaderboard; the nir extra for the NIR round trips; the ray extra for the leaderboard
# grids on a real local Ray cluster; the peers extra (tests/test_peers.py checks snntorch,
# norse and spikingjelly; sinabs pins an older nir, so it is left out); `make run` needs none
DATASETS := $(VENV)/.datasets-installed
$(DATASETS): $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[datasets,plot,nir,ray,peers]"
	touch $(DATASETS)

run: $(STAMP)
	$(BIN)/snnkit run

# the example third-party plugin, installed like any plugin, so the tests see its entry point
EXAMPLE := $(VENV)/.example-installed
$(EXAMPLE): $(DATASETS) examples/snnkit-checkpointed-bptt/pyproject.toml
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e examples/snnkit-checkpointed-bptt
	touch $(EXAMPLE)

test: $(EXAMPLE)
	SNNKIT_REQUIRE_EXAMPLE=1 SNNKIT_REQUIRE_DATASETS=1 SNNKIT_REQUIRE_RAY=1 $(BIN)/python -m pytest -m "not gpu"

test-fast: $(EXAMPLE)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

# On a machine with a CUDA GPU (and CuPy): every -m gpu test, conformance on cuda in fp64
# and fp32, kernel bandwidth against copy bandwidth, one bench size; writes gpu-check.json.
# Uses .venv if it exists, else $(PYTHON) (installing snnkit editable, offline). Without a
# GPU it says so and fails.
GPU_PYTHON := $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON))
gpu-check:
	$(GPU_PYTHON) benchmarks/gpu_check.py --out gpu-check.json
