# The two commands of the README. Each does all set-up on a fresh Debian 12 machine:
# Debian packages the build needs, a .venv with the package and its dev extra, generated protos.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEB_PACKAGES := libsystemd-dev pkg-config gcc python3-dev python3-venv
DEMO_DURATION ?= 10

.PHONY: demo test setup deb protos lint typecheck pytest clean

demo: setup
	$(PY) tools/demo.py --duration $(DEMO_DURATION)
	$(PY) tools/demo_ublox.py --duration 5

test: setup lint typecheck pytest

setup: deb $(VENV)/.installed protos

# Install the Debian packages the build needs, only when one is missing (CI runs as root;
# elsewhere sudo is used if present).
deb:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

$(VENV)/.installed: pyproject.toml setup.py
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python >= 3.11 required"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

protos: $(VENV)/.installed
	$(PY) tools/gen_protos.py >/dev/null

lint: setup
	$(VENV)/bin/ruff check panoseti_appliance tests tools bench
	$(VENV)/bin/ruff format --check panoseti_appliance tests tools bench

typecheck: setup
	$(VENV)/bin/mypy

pytest: setup
	$(VENV)/bin/pytest -q

clean:
	rm -rf $(VENV) build *.egg-info panoseti_appliance/_proto demo-output
