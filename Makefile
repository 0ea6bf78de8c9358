# Every target builds .venv from scratch when it is missing; nothing is assumed installed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
TORCH  ?= torch==2.13.0

.PHONY: install test lint format demo bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# CPU build of torch first, so that no dependency pulls a CUDA build
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[dev,bench]"
	@if $(PY) -m pip list 2>/dev/null | grep -qi '^nvidia-'; then echo "CUDA packages were installed" >&2; exit 1; fi
	touch $@

install: $(VENV)/.installed

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: lint
	$(PY) -m pytest -q

demo: install
	bash scripts/demo.sh

clean:
	rm -rf $(VENV) runs
