# Two entry points for a fresh clone: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup browser demo test bench default-model default-detector default-parser

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

# The web page's browser tests drive Debian's Chromium through Playwright (never a browser download). As root it is
# installed here; elsewhere they skip and say why (`sudo apt-get install chromium` brings it).
CHROMIUM := /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || [ "$$(id -u)" != 0 ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@test -x $(CHROMIUM) || echo "Chromium not found at $(CHROMIUM): the browser tests will skip (sudo apt-get install chromium)"

# The service on 127.0.0.1 with a SQLite file, the shipped models and a catalogue seeded from samples/clothing.
DEMO_PORT ?= 8000
demo: $(STAMP)
	$(VENV)/bin/fashionlens serve --db build/demo/catalog.db --seed samples/clothing --host 127.0.0.1 --port $(DEMO_PORT)

test: $(STAMP) browser
	$(PY) -m pytest -q -ra

# Retrains the shipped garment classifier from ../shared/datasets/clothing-small (about 3 minutes).
default-model: $(STAMP)
	$(VENV)/bin/fashionlens train ../shared/datasets/clothing-small/train --out src/fashionlens/assets/garment-classifier --task category --seed 0

# Retrains the shipped garment detector from ../shared/datasets/colorful-fashion (at most 70 minutes of
# epochs on 2 cores; rerun to resume), then copies only its weights and manifest into the package.
default-detector: $(STAMP)
	$(VENV)/bin/fashionlens train-detector ../shared/datasets/colorful-fashion --out build/garment-detector --time-budget 70 --seed 0
	mkdir -p src/fashionlens/assets/garment-detector
	cp build/garment-detector/manifest.json build/garment-detector/weights.safetensors src/fashionlens/assets/garment-detector/

# Retrains the shipped garment parser from ../shared/datasets/clothing-parsing (at most 32 minutes of epochs on 2
# cores; rerun to resume), then copies only its weights and manifest into the package.
default-parser: $(STAMP)
	$(VENV)/bin/fashionlens train-parser ../shared/datasets/clothing-parsing --out build/garment-parser --epochs 14 --time-budget 32 --seed 0
	mkdir -p src/fashionlens/assets/garment-parser
	cp build/garment-parser/manifest.json build/garment-parser/weights.safetensors src/fashionlens/assets/garment-parser/
