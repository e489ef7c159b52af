# Two commands for a fresh machine: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
PROTO_STAMP := lingting/.generated
PROTOS := $(shell find proto -name '*.proto' 2>/dev/null)

.PHONY: venv proto run test lint typecheck check clean

venv: $(STAMP) $(PROTO_STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.lock
	$(PIP) install -q --no-deps --no-build-isolation -e .
	touch $@

proto: $(PROTO_STAMP)

$(PROTO_STAMP): $(PROTOS) scripts/gen_proto.py $(STAMP)
	$(PY) scripts/gen_proto.py
	touch $@

run: venv
	$(VENV)/bin/lingting migrate
	$(VENV)/bin/lingting serve --host 127.0.0.1 --port 50051

test: venv
	bash scripts/test_setup.sh
	$(PY) -m pytest -q

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: venv
	$(VENV)/bin/mypy asr_engine service

check: lint typecheck test

clean:
	rm -rf $(VENV) lingting
