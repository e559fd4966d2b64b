# deploybell's operator image: `docker build .` (or any builder) on python:3.11-slim, or
# `make image`, which builds this same file with podman on a Debian base made by mmdebstrap.
#
# BASE runs the operator; BUILD_BASE (default: the same) only has to add `python3 -m venv`.
# Downloads during the build may need the builder's TLS and index settings: pass them as secrets
# (`--secret id=ca.pem,src=...` and `--secret id=pip.conf,src=...`); secrets are mounted for one
# step only and never stored in a layer. Without them pip uses its defaults.
ARG BASE=python:3.11-slim
ARG BUILD_BASE=${BASE}

# Build: the locked dependencies (hashes required, wheels only: no compiler), then deploybell.
FROM ${BUILD_BASE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
COPY requirements/runtime.lock requirements/build.lock requirements/
# pip and the build tools live in /opt/build only; /opt/venv (what ships) gets neither.
RUN --mount=type=secret,id=pip.conf --mount=type=secret,id=ca.pem \
    set -eu; \
    if [ -s /run/secrets/pip.conf ]; then export PIP_CONFIG_FILE=/run/secrets/pip.conf; fi; \
    if [ -s /run/secrets/ca.pem ]; then export PIP_CERT=/run/secrets/ca.pem; fi; \
    python3 -m venv /opt/build; \
    /opt/build/bin/pip install --require-hashes --only-binary :all: -r requirements/build.lock; \
    python3 -m venv --without-pip /opt/venv; \
    /opt/build/bin/pip --python /opt/venv/bin/python install --require-hashes --only-binary :all: \
      --no-compile -r requirements/runtime.lock
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN set -eu; \
    /opt/build/bin/pip wheel --no-deps --no-build-isolation --no-index --wheel-dir /tmp/wheels .; \
    /opt/build/bin/pip --python /opt/venv/bin/python install --no-deps --no-index --no-compile \
      /tmp/wheels/*.whl; \
    /opt/build/bin/pip --python /opt/venv/bin/python check
# Bytecode only for what the operator imports (every deploybell module and what they import:
# ~10 MB). The rest of site-packages, mostly the generated kubernetes APIs and models that the
# operator never imports (~60 MB of bytecode), keeps its source only and would be compiled in
# memory if ever imported. Hash-checked .pyc files stay valid whatever the files' times.
RUN PYTHONDONTWRITEBYTECODE=1 /opt/venv/bin/python -c "if True: \
    import importlib, pkgutil, py_compile, sys; \
    import deploybell; \
    names = [m.name for m in pkgutil.walk_packages(deploybell.__path__, 'deploybell.')]; \
    [importlib.import_module(n) for n in names if n != 'deploybell.__main__']; \
    files = {getattr(m, '__file__', None) or '' for m in list(sys.modules.values())}; \
    mode = py_compile.PycInvalidationMode.CHECKED_HASH; \
    [py_compile.compile(f, doraise=True, invalidation_mode=mode) \
     for f in sorted(files) if f.startswith('/opt/venv/') and f.endswith('.py')]"

# Run: the virtualenv on the base, as a non-root user, nothing else.
FROM ${BASE}
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
# The base's own pip, setuptools and wheel (python:3.11-slim has them) go; the user is written
# without useradd, which a minimal base lacks.
RUN set -eu; \
    site="$(python3 -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"; \
    for name in pip setuptools wheel _distutils_hack pkg_resources; do \
      rm -rf "$site/$name" "$site/$name"-*.dist-info; \
    done; \
    rm -f "$site/distutils-precedence.pth" /usr/local/bin/pip* /usr/local/bin/wheel; \
    echo 'deploybell:x:10001:10001:deploybell:/nonexistent:/usr/sbin/nologin' >> /etc/passwd; \
    echo 'deploybell:x:10001:' >> /etc/group
COPY --from=build /opt/venv /opt/venv
# Numeric, so that Kubernetes can verify runAsNonRoot.
USER 10001:10001
# kopf's liveness endpoint (DEPLOYBELL_LIVENESS) and Prometheus metrics (DEPLOYBELL_METRICS_PORT).
EXPOSE 8080 9090
ENTRYPOINT ["deploybell", "run"]
