# CNN Lab Server: GPU-capable runtime (TensorFlow with CUDA libraries; falls back to CPU).
# Two images from one file: the server (the default target) and, with
# `docker build --target trainer`, the trainer that deploy/k8s/train-job.yaml runs.
FROM python:3.11-slim-bookworm AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    CNNLAB_HOST=0.0.0.0 \
    CNNLAB_PORT=8000 \
    CNNLAB_MODELS_DIR=/app/models

RUN useradd --create-home --uid 10001 cnnlab
WORKDIR /app

# Serving dependencies only (no dev or training extras); same pip flags as the Makefile.
# DL3013 sees ".[gpu]" as an unpinned package; it is this project, whose dependency
# versions are pinned in pyproject.toml.
COPY pyproject.toml README.md ./
COPY service ./service
COPY training ./training
COPY cnnlab ./cnnlab
# hadolint ignore=DL3013
RUN pip install --no-cache-dir --quiet --disable-pip-version-check ".[gpu]"

# The trainer: the same, plus what training's reports need.
FROM base AS trainer
# hadolint ignore=DL3013
RUN pip install --no-cache-dir --quiet --disable-pip-version-check ".[gpu,training]"
USER 10001
ENTRYPOINT ["python", "-m", "training"]

# The server, with the bundled models.
FROM base AS server
COPY models ./models
# where captured uploads (CNNLAB_CAPTURE_RATE > 0) and the admin state go in
# docker-compose.yml (volumes)
RUN mkdir /app/captures /app/state && chown 10001 /app/captures /app/state
USER 10001
EXPOSE 8000 8500
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health/ready', timeout=2).status != 200)"]
CMD ["python", "-m", "service"]
