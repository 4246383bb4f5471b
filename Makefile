# LSTMVision: `make demo` trains and evaluates a row-LSTM on the embedded MNIST; `make test` runs the tests.
SWIFT ?= swift
BIN := .build/release/lstmvision
VENV ?= .venv

.PHONY: deps build demo test docs sanitize fuzz bench reference torch-check clean

deps:
	@bash scripts/install-deps.sh

build: deps
	$(SWIFT) build -c release

demo: build
	$(BIN) demo

# The suite, built with the MPI trait; SIGTERM, a full disk and a locked run folder in one process
# (tools/survive-check.sh); 2 MPI ranks against one process, and signals, dead and hung ranks (tools/mpi-check.sh);
# ONNX Runtime and TensorBoard's reader on what LSTMVision writes (tools/interop-check.sh); then a package that
# depends on LSTMVision by version, without MPI (the getting-started article's code), and the API documentation
# (tools/consumer-check.sh).
test: deps
	$(SWIFT) build --build-tests --traits MPI
	$(SWIFT) test --skip-build
	bash tools/survive-check.sh
	bash tools/mpi-check.sh
	bash tools/interop-check.sh
	bash tools/consumer-check.sh

# API documentation (DocC) of the three library targets, combined, into .build/docs.
docs:
	$(SWIFT) package --allow-writing-to-directory .build/docs generate-documentation --target LSTMVision \
		--target LSTMVisionCore --target LSTMVisionKernels --enable-experimental-combined-documentation \
		--output-path .build/docs

# The test suite under AddressSanitizer (with LeakSanitizer), then ThreadSanitizer, each in its own build folder.
# tools/lsan-suppressions.txt lists leaks inside the toolchain's XCTest and Foundation. OpenBLAS is a system
# library built without instrumentation: neither sanitizer sees its own memory accesses or threads.
sanitize: deps
	LSAN_OPTIONS="suppressions=$(CURDIR)/tools/lsan-suppressions.txt $(LSAN_OPTIONS)" \
		$(SWIFT) test --sanitize=address --scratch-path .build-asan
	$(SWIFT) test --sanitize=thread --scratch-path .build-tsan

# libFuzzer with AddressSanitizer on each file parser for FUZZ_SECONDS seconds, one after the other, starting
# from Tests/Fuzz/corpus and Tests/Fuzz/regressions; findings land in .build-fuzz/ (see Tests/Fuzz/README.md).
# One -sanitize= list: swiftc keeps only the last of several -sanitize= flags.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= idx safetensors image coco yolo yaml webp jpeg tfevents npy
fuzz: deps
	$(SWIFT) build -c release --scratch-path .build-fuzz --product lstmvision-fuzz \
		-Xswiftc -sanitize=fuzzer,address -Xswiftc -DLIBFUZZER -Xcc -fsanitize=fuzzer-no-link,address
	for t in $(FUZZ_TARGETS); do \
		mkdir -p .build-fuzz/corpus/$$t .build-fuzz/findings/$$t && \
		FUZZ_TARGET=$$t nice -n 19 .build-fuzz/release/lstmvision-fuzz -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
			-print_final_stats=1 -artifact_prefix=.build-fuzz/findings/$$t/ .build-fuzz/corpus/$$t Tests/Fuzz/corpus/$$t \
			$$(test -d Tests/Fuzz/regressions/$$t && echo Tests/Fuzz/regressions/$$t) || exit 1; \
	done

# Side-by-side speed against PyTorch and ONNX Runtime (installs them into $(VENV) from PyPI on first use).
bench: build
	bash tools/bench.sh

# Regenerates the PyTorch reference fixtures the tests compare against.
reference:
	test -x $(VENV)/bin/python || (python3 -m venv $(VENV) && $(VENV)/bin/pip install -q -r tools/requirements.txt)
	$(VENV)/bin/python tools/make_reference.py

# LSTMVision's files (models/, and tiny detectors trained here) into python/lstmvision_torch.py with strict=True:
# equal outputs on `lstmvision export --samples`' inputs. Installs nothing: needs torch in $(VENV) (make reference).
torch-check: build
	@$(VENV)/bin/python -c "import torch, safetensors" 2>/dev/null || \
		(echo "make torch-check needs torch and safetensors in $(VENV) (make reference creates it; or VENV=DIR)" >&2; \
		 exit 1)
	$(VENV)/bin/python tools/torch_check.py $(BIN) .build/torch-check

clean:
	rm -rf .build runs
