# syntax=docker/dockerfile:1.7
# The image every Kubeflow Pipelines step of voicecart runs in (components/ BASE_IMAGE) and that
# submits runs (the chart's recurring-run CronJob). Build from the repository root:
#   docker build -f docker/pipeline.Dockerfile -t ghcr.io/voicecart/voicecart-pipeline:0.1.0 .
# Holds the library, kfp (the steps run `python3 -m kfp.dsl.executor_main`; components are built
# with install_kfp_package=False), the components, and the compiled pipeline IR.

ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install . kfp==2.17.0 kfp-kubernetes==2.17.0 && pip check

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="voicecart-pipeline" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.source="https://github.com/voicecart/voicecart" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 voicecart \
 && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --shell /usr/sbin/nologin voicecart
COPY --from=build /opt/venv /opt/venv
COPY components /opt/voicecart/components
COPY pipelines /opt/voicecart/pipelines
# the KServe CRDs `voicecart rollout` validates its patches against (a pipeline's deploy step)
COPY kserve/crds /opt/voicecart/kserve/crds
COPY --chmod=0755 docker/kfp_submit.py /opt/voicecart/bin/kfp_submit.py
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/opt/voicecart \
    VOICECART_KSERVE_CRDS=/opt/voicecart/kserve/crds \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
USER 10001:10001
WORKDIR /tmp
# A batch image: healthy = the interpreter, the library and kfp import.
HEALTHCHECK --interval=30s --timeout=10s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import kfp, voicecart, components"]
CMD ["python", "/opt/voicecart/bin/kfp_submit.py", "--help"]
