# The two commands of the README. Each does all set-up on a fresh Debian 12 machine:
# Debian packages the build needs, a .venv with the package and its dev extra, generated protos.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEB_PACKAGES := libsystemd-dev pkg-config gcc python3-dev python3-venv
# The system tests (tests/system): a real systemd in a container booted from a debootstrapped
# Debian root, and a real kernel with udev in a QEMU VM (installed without recommends).
SYSTEST_DEB_PACKAGES := systemd-container debootstrap
SYSTEST_VM_DEB_PACKAGES := qemu-system-x86
# Nix 2.8 parses every .nix file and evaluates the NixOS module (tests/integration/test_nixos_module.py)
# with nixpkgs' lib/ from NIXPKGS_LIB, by default the vendored copy beside the clone when it exists.
NIX_DEB_PACKAGES := nix-bin
NIXPKGS_LIB ?= $(abspath $(wildcard ../shared/vendor/nixpkgs-lib/lib))
# The live-window tests: a virtual X server, and Tk for matplotlib's TkAgg windows.
DESK_DEB_PACKAGES := xvfb python3-tk
# Under `make test` as root a missing system-test prerequisite fails the run instead of skipping.
SYSTEST_REQUIRED ?= $(shell [ "$$(id -u)" = 0 ] && echo 1 || echo 0)
DEMO_DURATION ?= 10

.PHONY: demo test bench setup deb systest-deb nix-deb desk-deb protos lint typecheck pytest clean

demo: setup
	$(PY) tools/demo.py --duration $(DEMO_DURATION)
	$(PY) tools/demo_ublox.py --duration 5

test: setup lint typecheck pytest

# Every performance scenario against the real daemon (bench/run_all.py, about 5 minutes): writes
# bench/results/<date>.json and the tables of docs/performance.md. Options go in BENCH_ARGS, e.g.
# make bench BENCH_ARGS='--only 1,4 --seconds 3' (--seconds 10 --soak-minutes 10 --repeat 3 for the docs).
bench: setup
	$(PY) bench/run_all.py $(BENCH_ARGS)

setup: deb $(VENV)/.installed protos

# $(call apt-install,PACKAGES[,APT-GET OPTIONS]): install the Debian packages of PACKAGES that are
# missing, if any (CI runs as root; elsewhere sudo is used if present). Without dpkg (NixOS, where
# `nix develop` provides them) it only names them.
define apt-install
	@command -v dpkg >/dev/null || { echo "no dpkg: make sure these are installed: $(1)"; exit 0; }; \
	missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(2) $$missing; \
	fi
endef

# The Debian packages the build needs.
deb:
	$(call apt-install,$(DEB_PACKAGES))

# The Debian packages the system tests need (their Debian root and wheels are cached outside the
# clone, in PANOSETI_SYSTEST_CACHE or /var/cache/panoseti-systest; see tests/system/README.md).
systest-deb:
	$(call apt-install,$(SYSTEST_DEB_PACKAGES))
	$(call apt-install,$(SYSTEST_VM_DEB_PACKAGES),--no-install-recommends)

# Nix for the NixOS module's tests.
nix-deb:
	$(call apt-install,$(NIX_DEB_PACKAGES),--no-install-recommends)

# X and Tk for the live-window tests (tests/integration/test_plot_windows.py).
desk-deb:
	$(call apt-install,$(DESK_DEB_PACKAGES))

$(VENV)/.installed: pyproject.toml setup.py
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python >= 3.11 required"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

protos: $(VENV)/.installed
	$(PY) tools/gen_protos.py >/dev/null

lint: setup
	$(VENV)/bin/ruff check panoseti_appliance tests tools bench typings
	$(VENV)/bin/ruff format --check panoseti_appliance tests tools bench typings

typecheck: setup
	$(VENV)/bin/mypy

pytest: setup systest-deb nix-deb desk-deb
	PANOSETI_SYSTEST_REQUIRED=$(SYSTEST_REQUIRED) NIXPKGS_LIB=$(NIXPKGS_LIB) $(VENV)/bin/pytest -q

clean:
	rm -rf $(VENV) build *.egg-info panoseti_appliance/_proto demo-output
