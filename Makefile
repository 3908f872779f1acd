# Two commands on a fresh machine: `make run` (the pipeline on the embedded
# default) and `make test`. Both set everything up first and are idempotent:
# each setup step leaves a stamp and is skipped while its inputs are unchanged.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMPS := $(VENV)/.stamps
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export PYSPARK_PYTHON := $(CURDIR)/$(PY)

# The suite runs on parallel workers (pytest-xdist); tests that share a session fixture
# (the team's services, the seeded lake, the serving registry) stay on one worker, and so
# does each module (tests/support/scheduling.py). TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2
PYTEST := $(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder

.PHONY: setup run test test-fast lint bench clean

setup: $(STAMPS)/deps $(STAMPS)/spark-jars $(STAMPS)/horovod $(STAMPS)/system-packages \
       $(STAMPS)/seaweedfs

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMPS)/deps: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip wheel 'setuptools>=68,<81'
	$(PY) -m pip install --quiet -e '.[dev]'
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/spark-jars: $(STAMPS)/deps scripts/fetch_spark_jars.sh
	scripts/fetch_spark_jars.sh $(PY)
	@touch $@

# After the system packages: Horovod is built with MPI when Open MPI is there.
$(STAMPS)/horovod: $(STAMPS)/deps $(STAMPS)/system-packages scripts/build_horovod.sh
	scripts/build_horovod.sh $(PY)
	@touch $@

# SeaweedFS's `weed`, the object store of the tests and `mlpipe services up`, built with Go
# and cached in ~/.cache/mlpipe, like the Horovod wheel.
$(STAMPS)/seaweedfs: scripts/build_seaweedfs.sh
	scripts/build_seaweedfs.sh
	@mkdir -p $(STAMPS) && touch $@

# HAProxy, wrk and Open MPI, from Debian's packages where missing (the script says what it needs).
$(STAMPS)/system-packages: scripts/install_system_packages.sh | $(PY)
	scripts/install_system_packages.sh
	@mkdir -p $(STAMPS) && touch $@

run: setup
	$(VENV)/bin/mlpipe run

test: setup
	$(PYTEST)

# The edit-run loop: everything but the tests marked slow (end-to-end runs, real clusters).
test-fast: setup
	$(PYTEST) -m "not slow"

lint: $(STAMPS)/deps
	$(VENV)/bin/ruff check .

bench: setup
	$(PY) -m bench

# The Horovod wheel stays cached in ~/.cache/mlpipe and is not rebuilt.
clean:
	rm -rf $(VENV) build *.egg-info
