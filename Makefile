# Seller-account entity resolution: set-up, demo, tests.
# `make demo` and `make test` each run the set-up they need; `make setup` is idempotent.

PYTHON_BIN ?= python3.11
VENV       := .venv
PY         := $(VENV)/bin/python
JARS       := .jars
STAMP_PY   := $(VENV)/.installed
STAMP_JARS := $(JARS)/.fetched
GRAPHX_JAR := $(JARS)/seller-er-graphx.jar
JAVA_SRC   := $(shell find jvm/src -name '*.java')
DEMO_DIR   ?= demo
DEMO_ACCOUNTS ?= 20000
DEMO_SUPPLIERS ?= 0.15
VENV_SPLINK   := .venv-splink
STAMP_SPLINK  := $(VENV_SPLINK)/.installed
BENCH_DIR     ?= build/bench
BENCH_SIZES   ?= 100000,300000,1000000
BENCH_REPEATS ?= 3
BENCH_SEED    ?= 7
BENCH_CONF    ?= conf/large.yaml
CLUSTER_DIR      ?= build/cluster-demo
CLUSTER_ACCOUNTS ?= 3000

export PYSPARK_PYTHON := $(abspath $(PY))
export SPARK_LOCAL_IP := 127.0.0.1
export MLFLOW_DISABLE_TELEMETRY := true
export GX_ANALYTICS_ENABLED := false

.PHONY: setup demo cluster-demo package test lint bench clean help

help:
	@echo "make setup   create .venv, install pinned packages, fetch the Delta jars, build the GraphX adapter"
	@echo "make demo    generate $(DEMO_ACCOUNTS) accounts and resolve them (tables under $(DEMO_DIR)/out)"
	@echo "make cluster-demo  the job on a standalone cluster (master + 2 workers on loopback), $(CLUSTER_ACCOUNTS) accounts"
	@echo "make package the artifact to submit: build/dist/seller_er.zip (--py-files) and the jars"
	@echo "make test    lint (ruff), then the test suite"
	@echo "make bench   the job against Splink at BENCH_SIZES=$(BENCH_SIZES) accounts, BENCH_REPEATS=$(BENCH_REPEATS) (results in $(BENCH_DIR))"

setup: $(STAMP_PY) $(STAMP_JARS) $(GRAPHX_JAR)

# The project itself is not installed: jobs run as `python -m jobs.X` from this folder, and
# pytest puts the folder on sys.path (pyproject.toml). pip check proves the lock is whole.
$(STAMP_PY): requirements.lock
	test -x $(PY) || $(PYTHON_BIN) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==26.3
	$(PY) -m pip install --quiet --no-deps -r requirements.lock
	$(PY) -m pip check
	touch $@

$(STAMP_JARS): pom.xml
	mvn -B -q dependency:copy-dependencies -DoutputDirectory=$(JARS)
	touch $@

$(GRAPHX_JAR): $(JAVA_SRC) $(STAMP_PY)
	rm -rf build/jvm && mkdir -p build/jvm $(JARS)
	javac --release 17 -Xlint:-options -d build/jvm \
	  -cp "$$($(PY) -c 'import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))')/*" \
	  $(JAVA_SRC)
	jar cf $@ -C build/jvm .

demo: setup
	rm -rf $(DEMO_DIR)
	$(PY) -m jobs.generate_synthetic --output $(DEMO_DIR)/in --accounts $(DEMO_ACCOUNTS) --seed 7 \
	  --supplier-share $(DEMO_SUPPLIERS) --truth $(DEMO_DIR)/truth.parquet
	$(PY) -m jobs.resolve_entities --input $(DEMO_DIR)/in --output $(DEMO_DIR)/out \
	  --truth $(DEMO_DIR)/truth.parquet --run-id demo

# A real standalone cluster from the installed pyspark: generate, start, package, spark-submit,
# check the outputs, stop (jobs/cluster_demo.py).
cluster-demo: setup
	$(PY) -m jobs.cluster_demo --work $(CLUSTER_DIR) --accounts $(CLUSTER_ACCOUNTS)

package: setup
	$(PY) -m jobs.cluster_demo --package-only build/dist

test: setup lint
	$(PY) -m pytest -q

# Splink, the benchmark's baseline, lives in its own venv so that its dependencies never touch
# the pins of .venv; installed like requirements.lock above.
$(STAMP_SPLINK): bench/requirements-splink.lock
	test -x $(VENV_SPLINK)/bin/python || $(PYTHON_BIN) -m venv $(VENV_SPLINK)
	$(VENV_SPLINK)/bin/python -m pip install --quiet --upgrade pip==26.3
	$(VENV_SPLINK)/bin/python -m pip install --quiet --no-deps -r bench/requirements-splink.lock
	$(VENV_SPLINK)/bin/python -m pip check
	touch $@

bench: setup $(STAMP_SPLINK)
	$(PY) -m bench.run --work $(BENCH_DIR) --sizes $(BENCH_SIZES) --repeats $(BENCH_REPEATS) \
	  --conf $(BENCH_CONF) --seed $(BENCH_SEED)

lint: setup
	$(PY) -m ruff check features resolution jobs bench tests notebooks
	$(PY) -m ruff format --check features resolution jobs bench tests notebooks

clean:
	rm -rf $(VENV) $(JARS) build $(DEMO_DIR)
