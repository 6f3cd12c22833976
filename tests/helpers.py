"""Paths and commands the tests share. Routers are started with `klambda.testing`."""

from __future__ import annotations

import shutil
from pathlib import Path

from klambda.testing import CLI

ROOT = Path(__file__).resolve().parent.parent
KLAMBDA = [*CLI]


def copy_functions(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".klambda"))
    return dst


def call_url(
    url: str,
    method: str = "GET",
    body: bytes = b"",
    sign: tuple[str, str] | tuple[str, str, str] | None = None,
    service: str = "lambda",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers in lower case, body) of a function URL call; `sign`: (key, secret[, session
    token]) to sign it with SigV4 as boto3 and awscurl sign function URL calls."""
    import urllib.error
    import urllib.request

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    req = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    if sign is not None:
        SigV4Auth(Credentials(*sign), service, "us-east-1").add_auth(req)
    out = urllib.request.Request(
        url, data=body or None, method=method, headers=dict(req.headers.items())
    )
    try:
        with urllib.request.urlopen(out, timeout=60) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()
