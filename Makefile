# Two commands for a fresh machine: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
PROTOS := $(shell find proto -name '*.proto' 2>/dev/null)

.PHONY: venv proto run test lint typecheck check clean

venv: $(STAMP)

# The generated stubs (./lingting) must exist before the editable install so that it maps them too.
$(STAMP): requirements.lock pyproject.toml $(PROTOS) scripts/gen_proto.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.lock
	$(PY) scripts/gen_proto.py
	$(PIP) install -q --no-deps --no-build-isolation -e .
	touch $@

proto: venv

run: venv
	$(VENV)/bin/lingting migrate
	$(VENV)/bin/lingting serve --host 127.0.0.1 --port 50051

test: venv
	bash scripts/test_setup.sh
	LINGTING_REQUIRE_JAVA=1 $(PY) -m pytest -q

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: venv
	$(VENV)/bin/mypy asr_engine service

check: lint typecheck test

clean:
	rm -rf $(VENV) lingting
