# The handful of commands the README gives. Needs only python3 (>= 3.11) and pip.
#   make test                 create the environment, lint (ruff, the import layers) and run the test suite
#                             (two pytest-xdist workers, a module at a time: tests/conftest.py)
#   make repro                create the environment and run the whole pipeline (dvc repro)
#   make repro PROFILE=smoke  the same at another scale profile (smoke | cpu | study | gpu | tpu | colab)
#   make lab                  open the notebooks in JupyterLab
#   make bench                print the benchmark tables
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
TOOLS := .venv-tools
UV := $(TOOLS)/bin/uv
UV_VERSION := 0.13.9
export UV_PYTHON_DOWNLOADS := never
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: env test repro lab bench clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --extra dev --extra beam --python $(PYTHON)
	touch $@

env: $(VENV)/.synced

test: env
	ruff check lib tests tools bench && lint-imports && python -m pytest -q -n 2 --dist loadscope

repro: env
ifdef PROFILE
	sed -i.bak -E "s/^profile: *[a-z]+/profile: $(PROFILE)/" params.yaml && rm -f params.yaml.bak
endif
	dvc repro

lab: env
	jupyter lab notebooks/

bench: env
	python bench/render_throughput.py
	python bench/subset_membership.py
	python bench/loss_memory.py
	python bench/input_throughput.py
	python bench/train_throughput.py
	python bench/step_profile.py
	python bench/train_speedup.py
	python bench/transfer_step.py
	python bench/allocator.py
	python bench/transfer_stage.py
	python bench/balanced_arm.py

clean:
	rm -rf $(VENV) $(TOOLS) reports plots metrics data runs paper/figures paper/tables
