# syntax=docker/dockerfile:1.7
# The voicecart engine: the KServe transformer (gpu variant), the in-process ONNX Runtime predictor
# (cpu variant) and the feedback intake. Build from the repository root:
#   docker build -f docker/engine.Dockerfile -t ghcr.io/voicecart/voicecart-engine:0.1.0 .
# Slim base pinned by version, dependencies pinned by pyproject.toml, CPU-only torch, no secrets
# (credentials come from Kubernetes Secrets / workload identity at run time), non-root user.

ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# torch's CPU wheel first, so resolving the project never pulls the CUDA build
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install . && pip check

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="voicecart-engine" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.source="https://github.com/voicecart/voicecart" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 voicecart \
 && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --shell /usr/sbin/nologin voicecart
COPY --from=build /opt/venv /opt/venv
COPY --chmod=0755 docker/engine-entrypoint.sh /usr/local/bin/voicecart-engine
# the KServe CRDs `voicecart rollout` validates its patches against (the chart's rollout CronJob)
COPY kserve/crds /opt/voicecart/kserve/crds
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    VOICECART_KSERVE_CRDS=/opt/voicecart/kserve/crds \
    VOICECART_SERVING__FEEDBACK_DB=/tmp/voicecart/feedback/events.sqlite \
    VOICECART_SERVING__HOST=0.0.0.0
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080
# Docker/Compose use this; Kubernetes uses the chart's readiness/liveness probes on the same routes.
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/v1/models/%s' % (os.environ.get('PORT', '8080'), os.environ.get('VOICECART_SERVING__MODEL_NAME', 'voicecart')), timeout=2)"]
ENTRYPOINT ["/usr/local/bin/voicecart-engine"]
CMD ["serve", "--model-dir=/mnt/models", "--port=8080"]
