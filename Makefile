# equisynth developer entry points. Each target sets up its own virtual environment.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch is pinned so that set-up stays fast: on the development machine's package mirror
# torch==2.13.0 is a CPU build on local disk. On plain PyPI (Linux) pip picks a CUDA build of
# several GB; TORCH_INDEX=https://download.pytorch.org/whl/cpu gets the CPU build from PyTorch's
# index instead. TORCH_SPEC="torch" takes whatever build pip picks.
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
STAMP := $(VENV)/.equisynth-installed

.PHONY: demo test lint format bench clean chromium

# The ray extra is installed so that the test suite runs the Ray backend on a local instance.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install -q -e '.[dev,plots,ray]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/equisynth demo --out demo-out --overwrite

test: $(STAMP)
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || $(MAKE) --no-print-directory chromium
	$(BIN)/python -m pytest -q

# Headless Chromium renders report.html in tests/evaluation/test_report.py (skipped without it).
# Installed quietly with apt-get when possible (root on Debian/Ubuntu); otherwise a note.
chromium:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -qq chromium >/dev/null 2>&1 || \
		{ apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1; } || \
		echo "note: could not install chromium; the report rendering test will be skipped"; \
	else \
		echo "note: chromium not found (Debian package 'chromium'); the report rendering test will be skipped"; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

# Issue-2 benchmarks (speed, end to end, quality); numbers go to bench-out/, see BENCHMARKS.md.
# They read ../shared/data/ (not part of the repository) and take about an hour on 2 cores.
bench: $(STAMP)
	mkdir -p bench-out
	rm -f bench-out/quality.csv bench-out/strategy.csv
	$(BIN)/python benchmarks/bench_diffusion.py --out bench-out/diffusion.json
	$(BIN)/python benchmarks/bench_end_to_end.py --out bench-out/end_to_end.json
	$(BIN)/python benchmarks/bench_quality.py --seeds 0 1 2 3 4 --out bench-out/quality.csv
	$(BIN)/python benchmarks/bench_strategy.py --seeds 0 1 2 3 4 --out bench-out/strategy.csv

clean:
	rm -rf $(VENV) demo-out .pytest_cache .ruff_cache
