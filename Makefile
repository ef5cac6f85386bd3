# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test lint typecheck unit bench soak sim clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/python -m smsbridge demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

# Everything else on four workers (on two cores: the long tests spend much of their time
# waiting on the processes they kill and resume, and on Redis frozen under them; four took
# 48-56 s where three took 63-72); then the four tests of real time alone, one
# after another, so that nothing competes with the clock they measure (run beside each other,
# four processes sharing 9/s through Redis once lost a second to a stall in CI). Bytecode is
# compiled once up front and cached even where the environment says not to: the tests start
# the command and the fakes dozens of times, and four workers would each compile everything.
unit: setup
	$(BIN)/python -m compileall -q -j 0 smsbridge tests
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/pytest -n 4 --dist worksteal -m "not realtime"
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/pytest -m realtime

test: lint typecheck unit

# The reliability simulator: `make soak SEEDS=100000` runs that many seeds on every core and
# prints how often each fault fired; `make sim SEED=1234` replays one seed and tells it in full.
SEEDS ?= 100000
soak: setup
	$(BIN)/python -m smsbridge.testing._sim --seeds $(SEEDS)

sim: setup
	$(BIN)/python -m smsbridge.testing._sim --seed $(SEED)

bench: setup
	$(BIN)/python benchmarks/throughput.py
	$(BIN)/python benchmarks/limiter.py
	$(BIN)/python benchmarks/memory.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis *.egg-info
