# paperchat: the two quickstart commands are `make chat` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: chat test install browser bench eval clean

chat: install  ## install, index the seed papers if needed, and open the chat on http://127.0.0.1:7860
	$(BIN)/paperchat serve

test: install browser  ## install everything and run the whole test suite (slow model tests included)
	$(BIN)/pytest

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

browser:  ## headless Chromium for the browser tests (Debian packages)
	./scripts/install-browser.sh

bench: install
	$(BIN)/python -m paperchat.bench.run

eval: install
	$(BIN)/paperchat eval eval/questions.jsonl --out out/eval

clean:
	rm -rf $(VENV) out test-output .pytest_cache
