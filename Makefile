# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv on first use and install deepatlas with torch pinned (constraints.txt) to the CPU wheel.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test test-slow install clean fashion-mnist

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[test]'
	@$(MAKE) -s fashion-mnist
	touch $@

# Fashion-MNIST comes as a Debian package; installed where this user may (root with apt-get), never a failure:
# without it the tests that need the real files skip, saying so.
fashion-mnist:
	@if [ -d /usr/share/datasets/fashion-mnist ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1; } || \
	  echo "note: apt-get could not install dataset-fashion-mnist; tests that need it will skip"; \
	else echo "note: dataset-fashion-mnist not installed (needs root and apt-get); tests that need it will skip"; fi

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(PY) -m deepatlas demo --out runs/demo

test: $(VENV)/.installed
	$(PY) -m pytest -q

test-slow: $(VENV)/.installed
	$(PY) -m pytest -q -m slow

clean:
	rm -rf $(VENV) runs
