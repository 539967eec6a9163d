# `make run`: set up .venv and train the default run (configs/mog_ring.cfg).
# `make test`: set up .venv and run the whole test suite.
# `make eval|export|sample CONFIG=...`: the other modes on the run CONFIG trains;
# `FLAGS='--sampling.sampler=rep'` adds flags to any of them.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
CONFIG ?= configs/mog_ring.cfg

.PHONY: setup run eval export sample test benchmark classifiers clean

$(STAMP): setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(PY) -m tf_stackelberg.main --flagfile=$(CONFIG) $(FLAGS)

eval export sample: $(STAMP)
	$(PY) -m tf_stackelberg.main --flagfile=$(CONFIG) --mode=$@ $(FLAGS)

# Two worker processes (pytest-xdist), tests of one module on the same worker so that
# module fixtures are built once: most tests are single-threaded Python (tracing,
# Keras), which one process leaves the second core idle for. Modules go out in the
# order tests/conftest.py collects them, longest first.
test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadscope --no-loadscope-reorder tests

benchmark: $(STAMP)
	$(PY) tools/benchmark_training.py
	$(PY) tools/benchmark_sampling.py

# The evaluation classifiers of the image data sets, ahead of the first run that needs
# one (a run builds a missing one itself); those already cached are kept.
classifiers: $(STAMP)
	for dataset in mnist fashion_mnist cifar10; do \
	  $(PY) tools/train_classifier.py --dataset=$$dataset --if_missing $(FLAGS) || exit $$?; \
	done

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
