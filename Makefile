# Lethe: the two commands a fresh machine needs are `make demo` and `make test`.
# Both create .venv and install what they need; nothing else has to be installed first.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
UV     := $(VENV)/bin/uv
STAMP  := $(VENV)/.lethe-installed

.PHONY: demo test lint format install tools stack-up stack-env stack-down clean

demo: install
	$(PY) -m lethe.demo

test: install tools
	$(PY) -m pytest $(PYTEST_ARGS)

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
	$(UV) pip install --quiet --python $(PY) -r requirements.txt -r requirements-dev.txt
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	touch $@

# docker-compose (v1, Debian's package) validates docker-compose.yaml without an engine.
tools:
	@command -v docker-compose >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose) >/dev/null; \
	  elif command -v brew >/dev/null 2>&1; then brew install docker-compose; \
	  else echo "Install docker-compose (e.g. 'sudo apt-get install docker-compose') to validate docker-compose.yaml"; exit 1; fi; }

# The embedded stores in the background, for working with Airflow by hand:
#   make stack-up && eval "$$(make -s stack-env)" && airflow standalone
stack-up: install
	$(PY) -m lethe.stack up

stack-env:
	@$(PY) -m lethe.stack env

stack-down:
	$(PY) -m lethe.stack down

clean:
	-$(PY) -m lethe.stack down 2>/dev/null
	rm -rf $(VENV) .lethe .pytest_cache .ruff_cache
