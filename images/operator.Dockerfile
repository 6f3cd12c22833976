# The klambda operator (kopf + klambda_operator). Build from the repository root:
#   docker build -f images/operator.Dockerfile -t klambda/operator:0.1.0 .
# The chart runs it as uid 10001 with a read-only root filesystem and /tmp on an emptyDir.
# PYTHON_IMAGE: any Python 3.11 image with python and pip in /usr/local (python:slim, or the
# Debian-built base of scripts/cluster/images.sh where no registry is reachable).
# PIP_OFFLINE: extra pip arguments; images.sh passes "--no-index --find-links=/src/images/wheels"
# with the wheels it fetched on the host, since its build containers have no network.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG PIP_OFFLINE=""
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY images/wheels ./images/wheels
COPY runtime ./runtime
COPY operator ./operator
RUN python -m pip install --no-cache-dir --no-compile --root-user-action=ignore \
        --disable-pip-version-check $PIP_OFFLINE --prefix=/install -c constraints.txt ".[operator]"

FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
COPY --from=build /install /usr/local
# compiled here, once: the root filesystem is read-only at run time, so a module with no
# .pyc beside it would be compiled from source by every process that imports it (every
# pod start, every environment's zygote)
RUN python -m compileall -q -j 0 --invalidation-mode unchecked-hash /usr/local/lib
RUN groupadd --system --gid 10001 klambda \
    && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent \
        --no-create-home --shell /usr/sbin/nologin klambda
USER 10001:10001
CMD ["kopf", "run", "-m", "klambda_operator.handlers", "--all-namespaces", "--liveness=http://0.0.0.0:8080/healthz"]
