# syntax=docker/dockerfile:1
# A Lambda-style base image for container-image functions: Debian's Python with AWS's
# runtime interface client (awslambdaric), laid out as AWS's base images are, so a user's
# image built FROM it runs unchanged on klambda (and its handler on Lambda):
#
#   FROM klambda/lambda-python:3.11
#   COPY app.py ${LAMBDA_TASK_ROOT}/
#   CMD ["app.handler"]
#
# The entry point asks the Runtime API (AWS_LAMBDA_RUNTIME_API, set by klambda's worker) for
# events and runs the handler named by CMD. Built by scripts/images/lambda-base.sh, which
# downloads the wheels on the host (no registry is needed inside the build).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE}
COPY wheels /tmp/wheels
RUN python -m pip install --no-cache-dir --no-index --find-links /tmp/wheels \
        --root-user-action=ignore awslambdaric \
    && rm -rf /tmp/wheels
ENV LAMBDA_TASK_ROOT=/var/task \
    LAMBDA_RUNTIME_DIR=/var/runtime \
    PYTHONUNBUFFERED=1
RUN mkdir -p /var/task /var/runtime /opt
WORKDIR /var/task
ENTRYPOINT ["/usr/local/bin/python", "-m", "awslambdaric"]
CMD ["app.handler"]
