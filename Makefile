# odfail: `make demo` sets everything up and runs the demo; `make test` runs the tests.
.DEFAULT_GOAL := help
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
ODFAIL := $(VENV)/bin/odfail
DEMO := demo

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: $(VENV)/.installed ## create .venv and install odfail with its test, bench and dev extras

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,bench,dev]'
	$(PY) -m compileall -q odfail  # an editable install is not byte-compiled, and PYTHONDONTWRITEBYTECODE may be set
	touch $@

demo: setup ## generate a COCO-like sample, ingest it, evaluate it COCO-exactly, type its errors, write its HTML report
	$(ODFAIL) synth $(DEMO)/data --images 500 --seed 0 --render
	$(ODFAIL) ingest -w $(DEMO)/ws --gt $(DEMO)/data/gt.json --pred $(DEMO)/data/predictions.json --run demo --images $(DEMO)/data/images
	$(ODFAIL) info -w $(DEMO)/ws
	$(ODFAIL) evaluate -w $(DEMO)/ws --run demo --score 0.5 --per-class
	$(ODFAIL) errors -w $(DEMO)/ws --run demo
	$(ODFAIL) confusion -w $(DEMO)/ws --run demo --score 0.3 --by supercategory
	$(ODFAIL) analyze -w $(DEMO)/ws --run demo calibration
	$(ODFAIL) report -w $(DEMO)/ws --run demo --out $(DEMO)/report.html

test: setup ## run the test suite (oracle tests against pycocotools and tidecv on ../shared/data included), on every core
	$(PY) -m pytest -n auto

test-slow: setup ## the long property tests too
	$(PY) -m pytest -n auto -m "slow or not slow"

report: setup ## the HTML report: of the demo run (after make demo), or of your files: make report GT=gt.json PRED=p.json [PRED2=new.json]
ifdef GT
	$(ODFAIL) report --gt $(GT) --pred $(PRED) $(if $(PRED2),--pred $(PRED2)) --out $(or $(OUT),report.html)
else
	$(ODFAIL) report -w $(DEMO)/ws --run demo --out $(DEMO)/report.html
endif

bench: setup ## speed side by side with pycocotools, faster-coco-eval, hotcoco, ultrafast-pycocotools and tidecv (~10 min once the data exists; generating it takes longer the first time)
	$(PY) benchmarks/run.py

lint: setup ## ruff
	$(VENV)/bin/ruff check odfail tests benchmarks

clean: ## remove the demo, benchmark data and caches
	rm -rf $(DEMO) bench-data .pytest_cache .ruff_cache .hypothesis
	find . -name __pycache__ -prune -exec rm -rf {} +

.PHONY: help setup demo report test test-slow bench lint clean
