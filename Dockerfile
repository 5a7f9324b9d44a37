# One image for the Rasa replicas, the action server and the database bootstrap
# (docker-compose.yml, deploy/k8s/). Not built or run by this project's tests
# (tests/deploy/test_k8s.py reads it): see README, "Production". The model is not
# baked in; it comes from the `models` volume (Compose) or the model image
# (deploy/k8s/model.Dockerfile). Production only: no development defaults are
# copied (.dockerignore leaves config/dev.env and config/agents.dev.yml out),
# and WALLETBOT_IN_IMAGE makes the start-up check refuse any WALLETBOT_ENV but
# production (walletbot/settings.py, check_startup).
FROM python:3.10-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    RASA_TELEMETRY_ENABLED=false \
    RASA_CACHE_DIRECTORY=/tmp/rasa-cache \
    WALLETBOT_ENV=production \
    WALLETBOT_IN_IMAGE=1 \
    PATH=/opt/venv/bin:$PATH

WORKDIR /app

# Dependencies first (cached while only the code changes): the pinned set of
# requirements.txt + constraints.txt, without the test-only packages.
COPY requirements.txt constraints.txt ./
RUN python -m venv /opt/venv \
 && pip install "pip==26.3" "setuptools==70.3.0" "wheel==0.45.1" \
 && grep -v -E '^(pytest|pytest-asyncio|playwright|kubernetes-validate)==' requirements.txt > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt -c constraints.txt \
 && rm /tmp/requirements.txt

COPY pyproject.toml config.yml domain.yml endpoints.yml credentials.yml ./
COPY walletbot/ walletbot/
COPY actions/ actions/
# config/prod/ and nothing of the dev profile (.dockerignore: config/dev.env,
# config/agents.dev.yml); of scripts/, only the production ones.
COPY config/ config/
COPY data/ data/
COPY scripts/prod/ scripts/prod/
# Editable, as `make install` does: the web page's static files stay in place.
RUN pip install --no-deps -e . \
 && groupadd --system --gid 10001 walletbot \
 && useradd --system --uid 10001 --gid 10001 --create-home --shell /usr/sbin/nologin walletbot \
 && mkdir -p /app/models && chown walletbot:walletbot /app/models

# Numeric, so Kubernetes' runAsNonRoot can verify it (deploy/k8s/).
USER 10001:10001
EXPOSE 5005 5055
# docker-compose.yml gives every service its own command; this is a replica.
# Rasa starts through walletbot's entry point (version check, walletbot's
# patches of Rasa: walletbot/server.py), never as plain `rasa`.
CMD ["sh", "-c", "python -m walletbot.settings && exec python -m walletbot.server run --model models/walletbot.tar.gz --interface 0.0.0.0 --port 5005 --enable-api --auth-token \"$RASA_AUTH_TOKEN\" --endpoints config/prod/endpoints.yml --credentials credentials.yml"]
