# One entry point for people and CI. The virtual environment lives in .venv and is rebuilt
# whenever pyproject.toml changes.
PYTHON ?= python3
# Resolved before PATH below puts the environment first: the interpreter and pip that build the environment.
BASE_PYTHON := $(or $(shell command -v $(PYTHON) 2>/dev/null),$(PYTHON))
VENV   ?= .venv
BIN    := $(VENV)/bin
# Stage commands in dvc.yaml call `python`: make it the project's.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup bytecode demo check test lint preview browser site publish screenshots clean-venv

# The environment is installed by uv (pinned, put into the environment by pip): it downloads and unpacks the
# packages in parallel (measured on this 2-core machine from an empty cache: 48 to 65 s with bytecode, where pip
# took 104 to 143 s). It compiles no bytecode up front: that took 55 s for the whole of site-packages, of which
# a run imports a quarter. Each module is compiled the first time a process imports it and kept, as Python does
# by default; where PYTHONDONTWRITEBYTECODE is set (as on this machine, and CI's) no process would keep it and
# each would compile all it imports from source again (`make test` took 100 s longer), so make's commands run
# without it. uv reads no pip configuration: where only pip's configuration reaches the package index (a
# private mirror), `make setup INSTALLER=pip`.
unexport PYTHONDONTWRITEBYTECODE
INSTALLER ?= uv
UV_VERSION := 0.13.10
# The environment is made without pip (ensurepip installing pip into it took 4 s of the 10): uv goes in through
# the pip of $(PYTHON) where it has one (pip >= 22.3: --python), through the environment's own pip otherwise.
# Add packages to it with `uv pip install` (in the environment's bin/).
PIP_FLAGS := --quiet --disable-pip-version-check --no-compile
$(VENV)/.installed: pyproject.toml
	$(BASE_PYTHON) -m venv --without-pip $(VENV)
ifeq ($(INSTALLER),pip)
	$(BIN)/python -m ensurepip --default-pip >/dev/null
	$(BIN)/pip install $(PIP_FLAGS) -e '.[dev]'
else
	$(BASE_PYTHON) -m pip --python $(BIN)/python install $(PIP_FLAGS) uv==$(UV_VERSION) 2>/dev/null \
		|| { $(BIN)/python -m ensurepip --default-pip >/dev/null && $(BIN)/pip install $(PIP_FLAGS) uv==$(UV_VERSION); }
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[dev]'
endif
	touch $@

setup: $(VENV)/.installed

# The main job on the built-in offline default (synthetic CT, CPU): the whole DVC pipeline.
demo: setup
	$(BIN)/dvc repro

# The project's own modules compiled once, before the tests start hundreds of Python processes, so that the
# test projects (tests/conftest.py: copies of the tree) are given their bytecode with their sources.
bytecode: setup
	$(BIN)/python -m compileall -q pipeline benchmarks tools tests

# The inner loop: lint and the fast tests, no DVC runs, no Ray, no browser, on two workers with one torch thread
# each (tests/conftest.py; measured: 82-107 s of pytest on this 2-core machine on a fast day, where one process
# took 160 s and two workers with two threads apiece 136 s; 135-143 s on a slow day; 105 s at the round's last
# stop, with two checks that start a fresh interpreter with torch moved to `slow`). The files keep
# conftest's order (--no-loadscope-reorder): the one that builds the trained tiny project first.
check: setup lint bytecode
	$(BIN)/python -m pytest -m "not dvc and not ray and not browser and not slow" -n 2 --dist loadfile \
		--no-loadscope-reorder

# What CI runs: every test, on two workers (pytest-xdist), a test file per worker at a time so that module
# fixtures (a project through DVC, a Ray cluster, a browser) are built once; the longest files start first.
test: setup lint bytecode browser
	$(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder

# The site's browser tests drive Debian's chromium (never `playwright install`).
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] \
		&& { apt-get install -y -qq chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }; }; } \
		|| { echo "install Debian's chromium: sudo apt-get install -y chromium" >&2; exit 1; }

# Rebuild only the website from results/ and figures/ (as the `site` stage does).
site: setup
	$(BIN)/python -m pipeline.site.build

# One deployable folder for a static host: the website with every model's `dvc pull` command and direct link,
# and in deployed/dvcstore/ a static DVC remote of the model folders (from this checkout's DVC cache). It refuses
# while dvc.lock or params.yaml are not committed (a page's `dvc get` resolves the committed ones), and makes
# SITE_URL/dvcstore the committed default DVC remote (--set-remote), the address readers' commands will use.
#   make publish SITE_URL=https://you.github.io/bench REPO_URL=https://github.com/you/bench   (after `dvc pull`)
# (SET_REMOTE= leaves .dvc/config alone and only checks it: what a CI runner, whose commits go nowhere, uses.)
SET_REMOTE ?= --set-remote
publish: setup
	@test -n "$(SITE_URL)" || { echo "give SITE_URL=<the public address the site will be served at>" >&2; exit 2; }
	$(BIN)/python -m pipeline.site.publish --site deployed $(SET_REMOTE) --url "$(SITE_URL)" $(if $(REPO_URL),--repo-url "$(REPO_URL)")

# Screenshots of home, a leaderboard, a model page and the compare view at 1440 and 390 px, from public/
# (built by `make demo` or `make site`), into screenshots/ (not committed): look at them.
screenshots: setup browser
	$(BIN)/python -m tools.screenshots --site public --out screenshots

lint: setup
	$(BIN)/ruff check pipeline tests benchmarks tools
	$(BIN)/ruff format --check pipeline tests benchmarks tools
	$(BIN)/lint-imports --no-cache

# The picture of synthetic slices that anyone can check by eye (full-size phantom).
preview: setup
	$(BIN)/python -m pipeline.data.preview --out site/img/phantom-slices.png

clean-venv:
	rm -rf $(VENV)
