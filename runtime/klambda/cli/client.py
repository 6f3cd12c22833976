"""A small client of the router's REST API for the command line.

The standard library's urllib keeps `klambda invoke` quick to start; the API is Lambda's,
so the same calls work against a router in a cluster.

A router that requires an identity (README: Access control) gets one: `KLAMBDA_TOKEN` is
sent as a Kubernetes bearer token; otherwise, when `AWS_ACCESS_KEY_ID` or `AWS_PROFILE` is
set, requests are signed with SigV4 by botocore, with the credentials boto3 would use.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

DEFAULT_ENDPOINT = "http://127.0.0.1:8080"
API = "/2015-03-31/functions"


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, reason: str | None = None):
        super().__init__(f"{code}: {message}" + (f" (Reason: {reason})" if reason else ""))
        self.status = status
        self.code = code
        self.reason = reason


@dataclass
class Invocation:
    status: int
    payload: bytes
    executed_version: str
    function_error: str | None
    log: str | None
    request_id: str


def credentials_headers(
    method: str, url: str, body: bytes | None, headers: dict[str, str]
) -> dict[str, str]:
    """`headers` with what proves who the caller is, if the environment says."""
    token = os.environ.get("KLAMBDA_TOKEN")
    if token:
        return {**headers, "Authorization": f"Bearer {token}"}
    if not (os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE")):
        return headers
    # imported here: botocore takes longer to import than the rest of the CLI's start
    import botocore.session
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    session = botocore.session.get_session()
    creds = session.get_credentials()
    if creds is None:
        return headers
    region = session.get_config_variable("region") or "us-east-1"
    req = AWSRequest(method=method, url=url, data=body or b"", headers=headers)
    SigV4Auth(creds.get_frozen_credentials(), "lambda", region).add_auth(req)
    return dict(req.headers.items())


def endpoint(given: str | None) -> str:
    return (given or os.environ.get("KLAMBDA_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


class Client:
    def __init__(self, base: str, timeout: float = 960.0) -> None:
        self.base = base
        self.timeout = timeout

    def _request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        url = self.base + path
        req = urllib.request.Request(
            url,
            data=body,
            method=method,
            headers=credentials_headers(method, url, body, headers or {}),
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as err:
            data = err.read()
            code = err.headers.get("x-amzn-ErrorType", f"HTTP{err.code}")
            try:
                info = json.loads(data)
            except ValueError:
                info = {"message": data.decode(errors="replace")}
            raise ApiError(
                err.code, code, info.get("message") or info.get("Message", ""), info.get("Reason")
            ) from None
        except urllib.error.URLError as err:
            raise ApiError(
                0, "ConnectionError", f"cannot reach the router at {self.base}: {err.reason}"
            ) from None

    def json(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        _status, _h, raw = self._request(method, path, data, headers)
        return json.loads(raw) if raw else None

    def invoke(
        self,
        name: str,
        payload: bytes,
        qualifier: str | None = None,
        invocation_type: str = "RequestResponse",
        tail: bool = False,
    ) -> Invocation:
        path = f"{API}/{urllib.parse.quote(name, safe=':')}/invocations"
        if qualifier:
            path += "?" + urllib.parse.urlencode({"Qualifier": qualifier})
        headers = {"X-Amz-Invocation-Type": invocation_type, "Content-Type": "application/json"}
        if tail:
            headers["X-Amz-Log-Type"] = "Tail"
        status, h, body = self._request("POST", path, payload, headers)
        lower = {k.lower(): v for k, v in h.items()}
        log = lower.get("x-amz-log-result")
        return Invocation(
            status,
            body,
            lower.get("x-amz-executed-version", ""),
            lower.get("x-amz-function-error"),
            base64.b64decode(log).decode(errors="replace") if log else None,
            lower.get("x-amzn-requestid", ""),
        )

    def logs(
        self,
        name: str,
        follow: bool = False,
        limit: int | None = None,
        **window: str | None,
    ) -> Iterator[str]:
        """A function's log lines: recent ones (and followed), or those of a time window
        (`since`, `start`, `end`) from the router's log store."""
        q = {"follow": "1" if follow else "0"}
        if limit:
            q["limit"] = str(limit)
        q.update({k: v for k, v in window.items() if v is not None})
        url = f"{self.base}/klambda/v1/logs/{urllib.parse.quote(name)}?{urllib.parse.urlencode(q)}"
        req = urllib.request.Request(url, headers=credentials_headers("GET", url, None, {}))
        try:
            with urllib.request.urlopen(req, timeout=None if follow else self.timeout) as resp:
                for line in resp:
                    yield line.decode("utf-8", "replace").rstrip("\n")
        except urllib.error.HTTPError as err:
            raise ApiError(
                err.code,
                err.headers.get("x-amzn-ErrorType", "Error"),
                err.read().decode(errors="replace"),
            ) from None
        except urllib.error.URLError as err:
            raise ApiError(
                0, "ConnectionError", f"cannot reach the router at {self.base}: {err.reason}"
            ) from None
