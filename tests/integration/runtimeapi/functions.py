"""The functions of the Runtime API tests: one Python handler run three ways (the fork
path, awslambdaric through the Runtime API) and a custom runtime in the shape of AWS's
tutorial (a bash `bootstrap` with curl and a `function.sh` handler), each with the same
fault modes. Written out per test run, since the awslambdaric bootstrap names this
machine's interpreter."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

# the handler the fork path and awslambdaric both run
APP = """\
import os, sys, time

def handler(event, context):
    mode = event.get("mode")
    print("handling", mode)
    if mode == "raise":
        raise KeyError("missing")
    if mode == "sleep":
        time.sleep(30)
    if mode == "exit":
        sys.exit(3)
    if mode == "memory":
        hog = []
        while True:
            hog.append(b"x" * (8 * 1024 * 1024))
    if mode == "big":
        return "x" * (6 * 1024 * 1024 + 10)
    return {
        "pid": os.getpid(),
        "request_id": context.aws_request_id,
        "arn": context.invoked_function_arn,
        "remaining": context.get_remaining_time_in_millis(),
    }
"""

# AWS's tutorial custom runtime: the same loop (bash, as /bin/sh is dash here)
TUTORIAL_BOOTSTRAP = """\
#!/bin/bash
set -euo pipefail

# Initialization - load function handler
source $LAMBDA_TASK_ROOT/"$(echo $_HANDLER | cut -d. -f1).sh"

# Processing
while true
do
  HEADERS="$(mktemp)"
  # Get an event. The HTTP request will block until one is received
  EVENT_DATA=$(curl -sS -LD "$HEADERS" "http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation/next")

  # Extract request ID by scraping response headers received above
  REQUEST_ID=$(grep -Fi Lambda-Runtime-Aws-Request-Id "$HEADERS" | tr -d '[:space:]' | cut -d: -f2)

  # Run the handler function from the script
  RESPONSE=$($(echo "$_HANDLER" | cut -d. -f2) "$EVENT_DATA")

  # Send the response
  curl -sS "http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation/$REQUEST_ID/response" \\
    -d "$RESPONSE"
done
"""

TUTORIAL_FUNCTION = """\
function handler () {
  EVENT_DATA=$1
  echo "$EVENT_DATA" 1>&2;
  case "$EVENT_DATA" in
    *'"sleep"'*) sleep 30 ;;
    *'"exit"'*) exit 3 ;;
    # a command substitution does not inherit `set -e`: fail the handler by hand
    *'"memory"'*) head -c 1000000000 /dev/zero | tail > /dev/null || exit $? ;;
  esac
  RESPONSE="{\\"echo\\": $EVENT_DATA, \\"pid\\": $$}"
  echo $RESPONSE
}
"""


def ric_bootstrap(python: str) -> str:
    return f'#!/bin/sh\nexec {python} -m awslambdaric "$_HANDLER"\n'


def manifests(python: str = sys.executable) -> list[dict[str, object]]:
    def fn(name: str, runtime: str, handler: str, files: dict[str, str]) -> dict[str, object]:
        return {
            "apiVersion": "klambda.io/v1alpha1",
            "kind": "Function",
            "metadata": {"name": name},
            "spec": {
                "runtime": runtime,
                "handler": handler,
                "memoryMB": 128,
                "timeoutSeconds": 3,
                "code": {"inline": files},
            },
        }

    return [
        fn("fork", "python3.11", "app.handler", {"app.py": APP}),
        fn(
            "ric",
            "provided.al2023",
            "app.handler",
            {"bootstrap": ric_bootstrap(python), "app.py": APP},
        ),
        fn(
            "tutorial",
            "provided",
            "function.handler",
            {"bootstrap": TUTORIAL_BOOTSTRAP, "function.sh": TUTORIAL_FUNCTION},
        ),
        fn(
            "ric-broken",
            "provided.al2023",
            "app.handler",
            {"bootstrap": ric_bootstrap(python), "app.py": "import no_such_module_anywhere\n"},
        ),
        fn("no-bootstrap", "provided.al2023", "app.handler", {"app.py": APP}),
    ]


def write(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "functions.yaml").write_text(yaml.safe_dump_all(manifests(), sort_keys=False))
    return folder
