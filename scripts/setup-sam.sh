#!/usr/bin/env bash
# Installs the AWS SAM CLI in a venv of its own (its pins conflict with klambda's: click,
# boto3), cached under ~/.cache/klambda/sam. The tests compare klambda's events field by
# field with what `sam local generate-event` prints. Idempotent.
set -euo pipefail
CACHE="${CACHE:-$HOME/.cache/klambda}"
VERSION="${SAM_CLI_VERSION:-1.170.0}"
venv="$CACHE/sam"
if [ -x "$venv/bin/sam" ] && "$venv/bin/sam" --version 2>/dev/null | grep -q "$VERSION"; then
    exit 0
fi
echo "installing aws-sam-cli $VERSION into $venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q "aws-sam-cli==$VERSION"
"$venv/bin/sam" --version
