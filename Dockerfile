# deploybell's operator image. No Docker engine exists on the development machine, so this is
# not built here; the tests run the same entrypoint (`python -m deploybell run`) as a local
# process, and the Helm chart's restricted securityContext assumes the numeric user below.

# Build: install deploybell and its dependencies into a virtualenv.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN /opt/venv/bin/pip install .

# Run: the virtualenv on the same base image, as a non-root user, nothing else.
FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
RUN useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin deploybell
COPY --from=build /opt/venv /opt/venv
# Numeric, so that Kubernetes can verify runAsNonRoot.
USER 10001:10001
# kopf's liveness endpoint (DEPLOYBELL_LIVENESS) and Prometheus metrics (DEPLOYBELL_METRICS_PORT).
EXPOSE 8080 9090
ENTRYPOINT ["python", "-m", "deploybell", "run"]
