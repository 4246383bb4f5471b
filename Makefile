# LSTMVision: `make demo` trains and evaluates a row-LSTM on the embedded MNIST; `make test` runs the tests.
SWIFT ?= swift
BIN := .build/release/lstmvision
VENV ?= .venv

.PHONY: deps build demo test bench reference clean

deps:
	@bash scripts/install-deps.sh

build: deps
	$(SWIFT) build -c release

demo: build
	$(BIN) demo

test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

# Side-by-side speed against PyTorch (installs torch into $(VENV) from PyPI on first use).
bench: build
	bash tools/bench.sh

# Regenerates the PyTorch reference fixtures the tests compare against.
reference:
	test -x $(VENV)/bin/python || (python3 -m venv $(VENV) && $(VENV)/bin/pip install -q -r tools/requirements.txt)
	$(VENV)/bin/python tools/make_reference.py

clean:
	rm -rf .build runs
