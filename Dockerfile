# syntax=docker/dockerfile:1
# The ec-recommend image: one image for every service, consumer and the
# gateway; the command picks what a container runs (`serve product`, `serve
# gateway`, `serve inventory`, ...). Kubernetes manifests: deploy/kubernetes.
#
#   docker build -t ec-recommend .
#   docker run --rm -p 8080:8080 ec-recommend gateway
#
# The Python version here and the entry point must match pyproject.toml
# (tests/unit/deploy/test_dockerfile.py checks both).

ARG PYTHON_VERSION=3.11

# --- build: a wheel of the project and wheels of everything it needs --------
FROM python:${PYTHON_VERSION}-slim-bookworm AS build
WORKDIR /src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --wheel-dir /wheels .

# --- runtime: the wheels installed, no compilers, no sources -----------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    EC_PROFILE=production \
    EC_LOG_FORMAT=json \
    EC_DATA_DIR=/var/lib/ec-recommend \
    EC_RPC_HOST=0.0.0.0 \
    EC_GATEWAY_HOST=0.0.0.0 \
    EC_GATEWAY_PORT=8080 \
    EC_METRICS_HOST=0.0.0.0 \
    EC_METRICS_PORT=9100
# Versions are those the build stage resolved: --no-index installs only its wheels.
# hadolint ignore=DL3013
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels ec-recommend \
 && groupadd --system --gid 10001 ec \
 && useradd --system --uid 10001 --gid ec --home-dir /var/lib/ec-recommend --create-home ec
USER 10001:10001
WORKDIR /var/lib/ec-recommend
# 8080: the gateway's REST port; 50051: a service's gRPC port (EC_PORT_<SERVICE>);
# 9100: /metrics and /healthz of every process.
EXPOSE 8080 50051 9100
# /healthz on the metrics port answers once the process's services listen.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9100/healthz', timeout=2)"]
# SIGTERM drains in-flight calls (EC_DRAIN_TIMEOUT) before the process exits.
STOPSIGNAL SIGTERM
ENTRYPOINT ["ec-recommend", "serve"]
CMD ["gateway"]
