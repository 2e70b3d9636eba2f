# Each target makes its own virtual environment (.venv) on first use; a fresh machine needs only
# Python 3.11 (tflite-runtime has no wheels for newer Pythons) and the package registries.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RUN ?= runs/demo

.PHONY: demo test test-pi lint bench bench-numbers bench-frames bench-serve bench-camera bench-micro clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# compat mode: the checkout as a plain path in a .pth (lstm_edge/__init__.py finds the stages beside it),
	# where the default editable finder is an import hook that costs ~10 ms of every start in the venv;
	# setuptools calls compat transitional, so fall back to the default, which works too, if it goes.
	$(BIN)/pip install --quiet -e '.[train,tflite-runtime,dev,bench,micro,serve,camera]' --config-settings editable_mode=compat \
	  || $(BIN)/pip install --quiet -e '.[train,tflite-runtime,dev,bench,micro,serve,camera]'
	touch $@

## demo: train on the offline MNIST sample, export int8 with parity proven, the line reader for touching digits beside it, self-test, classify example digits
demo: $(BIN)/.installed
	rm -rf $(RUN) $(RUN)-lines
	$(BIN)/lstm-edge train --dataset mnist-sample --epochs 12 --augment --out $(RUN)
	$(BIN)/lstm-edge evaluate $(RUN)
	$(BIN)/lstm-edge export $(RUN) --quantize --out model.tflite
	$(BIN)/lstm-edge train-lines --dataset mnist-sample --out $(RUN)-lines
	$(BIN)/lstm-edge export-lines $(RUN)-lines --out model.lines.tflite
	$(BIN)/edge-doctor --model model.tflite
	$(BIN)/edge-classify examples/digits --model model.tflite

## test: the linter, then the whole test suite on real digits and real runtimes
# Two pytest workers, each taking whole files (a file's fixtures, such as the line reader's training or
# the emulated Pis, are made once): one worker alone leaves a core idle through the emulated Pis'
# single-threaded qemu and the many CLIs' start-ups. The files that train for minutes go first, one on
# each worker (tests/conftest.py, FIRST_FILES). TEST_WORKERS=0 runs the suite in one process.
TEST_WORKERS ?= 2
test: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder)

## test-pi: the edge package on an emulated Raspberry Pi (fetches qemu and Debian's packages itself, no root)
test-pi: $(BIN)/.installed
	$(BIN)/python -m pytest -q tests/pi

## bench: lstm-edge beside its baselines on this machine -> benchmarks/results/ and docs/benchmarks.md
bench: $(BIN)/.installed
	$(BIN)/python -m benchmarks.run

## bench-numbers: whole numbers read from synthetic images (needs a model: make demo, or MODEL= and DATA=)
MODEL ?= model.tflite
bench-numbers: $(BIN)/.installed
	$(BIN)/python -m benchmarks.numbers --model $(MODEL) $(if $(DATA),--data $(DATA))

## bench-frames: camera frames and photos to answers, stage by stage, against decoding them (needs a model: make demo, or MODEL=)
bench-frames: $(BIN)/.installed
	$(BIN)/python -m benchmarks.frames --model $(MODEL)

## bench-serve: edge-serve on loopback under 1-64 concurrent clients, beside in-process classify (needs a model: make demo, or MODEL=)
bench-serve: $(BIN)/.installed
	$(BIN)/python -m benchmarks.serve --model $(MODEL)

## bench-camera: a replayed camera read continuously: frames/s, dropped frames, latency from frame to reading (needs a model: make demo, or MODEL=)
bench-camera: $(BIN)/.installed
	$(BIN)/python -m benchmarks.camera --model $(MODEL)

## bench-micro: --units 32/64/128 exported for TFLM, flash and RAM against common boards -> docs/benchmarks.md
bench-micro: $(BIN)/.installed
	$(BIN)/python -m benchmarks.micro

lint: $(BIN)/.installed
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) runs model.tflite model.json model.golden.npz .pytest_cache .ruff_cache .hypothesis
