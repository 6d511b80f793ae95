# Two entry points for a fresh clone: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup browser demo test test-fast lint bench default-model default-detector default-parser default-types shipped-graphs light-install

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

# The tests that take under a second each (no model training, no server, no shared data, no browser): a minute.
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not integration and not browser"

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

# Retrains the shipped garment classifier from ../shared/datasets/clothing-small (about 3 minutes).
# The shipped classifiers' backbone graph ships once, in assets/backbones (make shipped-graphs); their manifests
# then declare the garment kinds their classes fit (fashionlens.taxonomy).
default-model: $(STAMP)
	$(VENV)/bin/fashionlens train ../shared/datasets/clothing-small/train --out build/garment-classifier --task category --seed 0 --recipe classic
	mkdir -p src/fashionlens/assets/garment-classifier
	cp build/garment-classifier/manifest.json build/garment-classifier/weights.safetensors src/fashionlens/assets/garment-classifier/
	$(PY) -m fashionlens.taxonomy src/fashionlens/assets/garment-classifier

# Retrains the shipped garment detector from ../shared/datasets/colorful-fashion (at most 70 minutes of
# epochs on 2 cores; rerun to resume), then copies only its weights and manifest into the package.
default-detector: $(STAMP)
	$(VENV)/bin/fashionlens train-detector ../shared/datasets/colorful-fashion --out build/garment-detector --time-budget 70 --seed 0
	mkdir -p src/fashionlens/assets/garment-detector
	cd build/garment-detector && cp manifest.json weights.safetensors model.onnx export.json ../../src/fashionlens/assets/garment-detector/

# Retrains the shipped garment parser from ../shared/datasets/clothing-parsing (30 epochs, about 47 minutes on 2
# idle cores, at most 55; rerun to resume), then copies only its weights and manifest into the package.
default-parser: $(STAMP)
	$(VENV)/bin/fashionlens train-parser ../shared/datasets/clothing-parsing --out build/garment-parser --epochs 30 --patience 12 --time-budget 55 --seed 0
	mkdir -p src/fashionlens/assets/garment-parser
	cd build/garment-parser && cp manifest.json weights.safetensors model.onnx export.json ../../src/fashionlens/assets/garment-parser/

# Retrains the shipped street-photo type head: one crop per labelled garment part of clothing-parsing's train and
# validation photos (its test photos stay for benchmarks/parse_street.py), padded to a square on white as the
# pipeline's crops are, folded into CCP's type names (fashionlens/taxonomy_types.py), then a linear head on the
# garment classifier's own Lite1 features.
default-types: $(STAMP)
	rm -rf build/type-crops/trainval
	$(VENV)/bin/fashionlens crop ../shared/datasets/clothing-parsing --format masks --part trainval --padding 0.05 --square --out build/type-crops/trainval
	$(PY) -m fashionlens.taxonomy_types build/type-crops/trainval
	$(VENV)/bin/fashionlens train build/type-crops/trainval --task type --out build/garment-types --backbone efficientnet_lite1 --no-balance --seed 0
	mkdir -p src/fashionlens/assets/garment-types
	cp build/garment-types/manifest.json build/garment-types/weights.safetensors src/fashionlens/assets/garment-types/
	$(PY) -m fashionlens.taxonomy src/fashionlens/assets/garment-types

# The ONNX graphs the package ships, so the base install (no PyTorch) runs the shipped models: the shipped
# classifiers' backbone (with its spec) and the detector's and the parser's whole networks, each checked against
# PyTorch (the parity is in the folder's export.json). Run after retraining a shipped model.
shipped-graphs: $(STAMP)
	rm -f src/fashionlens/assets/backbones/*.onnx
	$(PY) -c "import tempfile; from pathlib import Path; from fashionlens.backbone_spec import backbone_onnx, ship_backbone; from fashionlens.backbones import create_backbone; b = create_backbone('efficientnet_lite1'); ship_backbone(b, backbone_onnx(b, Path(tempfile.mkdtemp())))"
	$(VENV)/bin/fashionlens export src/fashionlens/assets/garment-detector
	$(VENV)/bin/fashionlens export src/fashionlens/assets/garment-parser

# The base install as `pip install fashionlens` gives it, in a clean venv: no PyTorch; analyse, serve, every base
# command (CI runs it).
light-install:
	bash .ci/light_install
