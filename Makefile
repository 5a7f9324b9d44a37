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
# Everything the trained model depends on (data/desk/ is the desk's canned replies: not training data).
MODEL_INPUTS := config.yml domain.yml $(FAQ_NLU) \
	$(filter-out $(FAQ_NLU),$(shell find data -type f -name '*.yml' -not -path 'data/faq/*' -not -path 'data/desk/*')) \
	$(wildcard data/jieba/*) $(wildcard walletbot/nlu/*.py)

.PHONY: help deps install data validate train run test test-fast constraints clean

help:
	@echo "make run        install if needed, train if needed, start the bot (Ctrl-C stops)"
	@echo "make test       install if needed (system packages too), run every test"
	@echo "make test-fast  unit tests only (no training); may skip what the machine lacks"
	@echo "make deps       install the system packages the tests need (apt, as root)"
	@echo "make data       rebuild $(FAQ_NLU) from the FAQ knowledge base"
	@echo "make validate   rasa data validate + knowledge-base lint"
	@echo "make train      train $(MODEL) if the data changed"

$(STAMP): requirements.txt constraints.txt pyproject.toml
	@echo "walletbot: installing the Python packages into $(VENV) (first time: about 2 minutes)"
	@test -x $(BIN)/python || { python=$$(scripts/find-python.sh) && "$$python" -m venv $(VENV); }
	@$(BIN)/pip install -qq --upgrade "pip==26.3" "setuptools==70.3.0" "wheel==0.45.1"
	@$(BIN)/pip install -qq -r requirements.txt -c constraints.txt
	@$(BIN)/pip install -qq --no-deps -e .
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
# TensorFlow's and Rasa's output goes to var/log/train.log; on failure its tail is shown.
$(MODEL): $(MODEL_INPUTS) $(STAMP)
	@mkdir -p var/log
	@echo "walletbot: training the model (about 1 minute; log: var/log/train.log)"
	@$(ENV) $(BIN)/rasa train --fixed-model-name walletbot --out models >var/log/train.log 2>&1 \
	  || { tail -n 25 var/log/train.log; \
	       echo "error: training failed (full log: var/log/train.log); check the data with: make validate"; \
	       exit 1; }
	@echo "walletbot: model ready: $@"
	@touch $@

train: $(MODEL)

run: $(MODEL)
	scripts/run.sh

# The system packages (PostgreSQL, Redis, nginx, Chromium, the CJK font): installed
# with apt as root, else make stops here naming the apt-get line. Never a silent skip.
deps:
	@scripts/deps.sh

test: deps $(MODEL)
	$(ENV) $(BIN)/pytest

# Asked for explicitly: a missing system package skips its tests here.
test-fast: $(FAQ_NLU)
	$(ENV) WALLETBOT_ALLOW_SKIPS=1 $(BIN)/pytest -m "not slow"

constraints: $(STAMP)
	( echo "# Full pin set of the .venv, regenerate with \`make constraints\`."; \
	  $(BIN)/pip freeze --exclude-editable | grep -vi '^walletbot' ) > constraints.txt

clean:
	rm -rf var models/*.tar.gz .pytest_cache reports
