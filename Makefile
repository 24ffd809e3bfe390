# Lethe: the two commands a fresh machine needs are `make demo` and `make test`.
# Both create .venv and install what they need; nothing else has to be installed first.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
UV     := $(VENV)/bin/uv
STAMP  := $(VENV)/.lethe-installed

.PHONY: demo test lint format install tools stack-up stack-env stack-down airflow airflow-env \
        airflow-status airflow-down validate clean bench

demo: install
	$(PY) -m lethe_dev.demo

test: install tools validate
	$(PY) -m pytest $(PYTEST_ARGS)

# Every benchmark side by side (bench/run.py): a table of medians and ratios against the
# targets, and docs/benchmarks.md rewritten. 11-26 minutes on 2 CPUs, by the machine;
# BENCH_ARGS=--quick for a smoke run of a minute or two (docs left alone).
bench: install
	$(PY) bench/run.py $(BENCH_ARGS)

# Every policy file, every error with its file, category and field; non-zero on any.
validate: install
	$(PY) -m lethe.policy validate

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

install: $(STAMP)

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	  || { echo "Lethe needs Python 3.11 or newer (PYTHON=$(PYTHON))"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check uv
	@# Bytecode compiled at install: this machine sets PYTHONDONTWRITEBYTECODE, so without it
	@# every process (each Airflow task, each DAG file parse) compiles Airflow from source.
	$(UV) pip install --quiet --compile-bytecode --python $(PY) -r requirements.txt -r requirements-dev.txt
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	touch $@

# docker-compose (v1, Debian's package) validates docker-compose.yaml without an engine.
tools:
	@command -v docker-compose >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose) >/dev/null; \
	  elif command -v brew >/dev/null 2>&1; then brew install docker-compose; \
	  else echo "Install docker-compose (e.g. 'sudo apt-get install docker-compose') to validate docker-compose.yaml"; exit 1; fi; }
	@# Headless Chromium for the real-browser test (tests/ui/test_browser.py); without root
	@# and apt the test is skipped and says why.
	@command -v chromium >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null; \
	  else echo "chromium not installed: the real-browser test will be skipped"; fi; }
	@# Redis, the Celery broker of the scale-out test (tests/scaleout), which uses the server
	@# on 127.0.0.1:6379 when one answers and starts redis-server otherwise.
	@command -v redis-server >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) >/dev/null; \
	  else echo "redis-server not installed: the scale-out test needs Redis on 127.0.0.1:6379"; fi; }

# The embedded stores alone, in the background (make airflow starts them too):
#   make stack-up && eval "$$(make -s stack-env)"
stack-up: install
	$(PY) -m lethe_dev.stack up

stack-env:
	@$(PY) -m lethe_dev.stack env

stack-down:
	$(PY) -m lethe_dev.stack down

# Airflow as a service on the embedded stack (.lethe/airflow-service: logs, pids, login):
# the stores up and seeded, metadata in the stack's PostgreSQL, LocalExecutor, every DAG.
airflow: install
	$(PY) -m lethe_dev.stack.service up

# Export lines for the `airflow` command in a shell: eval "$$(make -s airflow-env)"
airflow-env:
	@$(PY) -m lethe_dev.stack.service env

airflow-status:
	$(PY) -m lethe_dev.stack.service status

airflow-down:
	$(PY) -m lethe_dev.stack.service down

clean:
	-$(PY) -m lethe_dev.stack.service down 2>/dev/null
	-$(PY) -m lethe_dev.stack down 2>/dev/null
	rm -rf $(VENV) .lethe .pytest_cache .ruff_cache
