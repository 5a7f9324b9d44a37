# walletbot: `make run` and `make test` do everything on a fresh machine.
# Every recipe loads config/dev.env defaults through scripts/env.sh.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
MODEL   := models/walletbot.tar.gz
ENV     := . scripts/env.sh &&
FAQ_NLU := data/nlu/faq.yml
KB      := $(wildcard data/faq/*.yml)
# Everything the trained model depends on.
MODEL_INPUTS := config.yml domain.yml $(FAQ_NLU) \
	$(filter-out $(FAQ_NLU),$(shell find data -type f -name '*.yml' -not -path 'data/faq/*')) \
	$(wildcard data/jieba/*) $(wildcard walletbot/nlu/*.py)

.PHONY: help install data validate train run test test-fast constraints clean

help:
	@echo "make run        install if needed, train if needed, start the bot (Ctrl-C stops)"
	@echo "make test       install if needed, run every test"
	@echo "make test-fast  unit tests only (no training)"
	@echo "make data       rebuild $(FAQ_NLU) from the FAQ knowledge base"
	@echo "make validate   rasa data validate + knowledge-base lint"
	@echo "make train      train $(MODEL) if the data changed"

$(STAMP): requirements.txt constraints.txt pyproject.toml
	@test -x $(BIN)/python || "$$(scripts/find-python.sh)" -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip==26.3" "setuptools==70.3.0" "wheel==0.45.1"
	$(BIN)/pip install --quiet -r requirements.txt -c constraints.txt
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $@

install: $(STAMP)

$(FAQ_NLU): $(KB) $(STAMP)
	$(BIN)/walletbot faq build --out $@
	@touch $@

data: $(FAQ_NLU)

# rasa data validate plus the knowledge-base lint (see `walletbot validate --help`).
validate: $(FAQ_NLU)
	$(ENV) $(BIN)/walletbot validate

# Rasa skips training itself when its fingerprint is unchanged; the touch
# keeps make from asking again.
$(MODEL): $(MODEL_INPUTS) $(STAMP)
	$(ENV) $(BIN)/rasa train --fixed-model-name walletbot --out models
	@touch $@

train: $(MODEL)

run: $(MODEL)
	scripts/run.sh

test: $(MODEL)
	$(ENV) $(BIN)/pytest

test-fast: $(FAQ_NLU)
	$(ENV) $(BIN)/pytest -m "not slow"

constraints: $(STAMP)
	( echo "# Full pin set of the .venv, regenerate with \`make constraints\`."; \
	  $(BIN)/pip freeze --exclude-editable | grep -vi '^walletbot' ) > constraints.txt

clean:
	rm -rf var models/*.tar.gz .pytest_cache reports
