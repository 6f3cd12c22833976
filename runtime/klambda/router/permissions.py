"""What each request needs permission for, in Kubernetes RBAC's terms. Pure.

Access to a router is decided by the API server (a SubjectAccessReview) on the klambda.io
resources, so a ClusterRole says who may do what, as for any other object:

    request                                        verb      resource
    Invoke (REST, gRPC)                            invoke    functions, name
    an AWS_IAM function URL (InvokeFunctionUrl)    invoke    functions/url, name
    GetFunction, versions, aliases, concurrency    get       functions, name
    ListFunctions, GetAccountSettings              list      functions
    PublishVersion, Create/UpdateAlias, Put*       update    functions, name
    DeleteFunction (a version), Delete*            delete    functions, name
    function logs                                  get       functions/logs, name
    DLQ list                                       get       functions/dlq, name
    DLQ redrive                                    redrive   functions, name
    a named queue's messages                       get       queues, name
    /healthz, /metrics                             (open)
    a function URL (/url/...)                      (its authType: klambda.router.url_access)

`invoke` and `redrive` are verbs of klambda's own: RBAC accepts any verb name. Calling a
function URL is its own permission, as Lambda's `lambda:InvokeFunctionUrl` is apart from
`lambda:InvokeFunction`: the `url` subresource of the function (an alias's URL too).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from klambda.router.routing import parse_function_name

OPEN = ("/healthz", "/metrics")
# function URLs: NONE is open to anyone, AWS_IAM is checked by the gateway (Lambda's shapes)
URLS = "/url/"
WRITE_VERBS = {"POST": "update", "PUT": "update", "PATCH": "update", "DELETE": "delete"}


@dataclass(frozen=True)
class Permission:
    verb: str
    resource: str = "functions"
    name: str | None = None
    subresource: str | None = None

    def describe(self) -> str:
        what = self.resource + (f"/{self.subresource}" if self.subresource else "")
        return f"{self.verb} on {what}" + (f" {self.name!r}" if self.name else "")


def function_name(raw: str) -> str:
    """The function a path's `{name}` (a name, name:qualifier or an ARN) is about."""
    name = urllib.parse.unquote(raw)
    try:
        return parse_function_name(name, None)[0]
    except ValueError:
        return name  # the handler refuses it; the review is about the name as given


def invoke_url(function: str) -> Permission:
    """What calling a function's (or its alias's) AWS_IAM URL needs: InvokeFunctionUrl."""
    return Permission("invoke", name=function, subresource="url")


def required(method: str, path: str, query: Mapping[str, str] | None = None) -> Permission | None:
    """The permission a REST request needs; None for the open endpoints and function URLs."""
    if path in OPEN or path.startswith(URLS):
        return None
    parts = [p for p in path.split("/") if p]
    write = WRITE_VERBS.get(method.upper())
    # /<api date>/functions[/{name}[/...]]
    if len(parts) >= 2 and parts[1] == "functions" and parts[0][:1].isdigit():
        if len(parts) == 2:
            return Permission("list") if write is None else Permission("update")
        name = function_name(parts[2])
        if parts[3:4] == ["invocations"]:
            return Permission("invoke", name=name)
        return Permission(write or "get", name=name)
    if parts[:1] and parts[0][:1].isdigit() and parts[1:2] == ["account-settings"]:
        return Permission("list")
    # klambda's own: /klambda/v1/...
    if parts[:2] == ["klambda", "v1"]:
        rest = parts[2:]
        if rest[:1] == ["functions"] and len(rest) >= 2:
            name = function_name(rest[1])
            if rest[2:4] == ["dlq", "redrive"]:
                return Permission("redrive", name=name)
            if rest[2:3] == ["dlq"]:
                return Permission("get", name=name, subresource="dlq")
            return Permission(write or "get", name=name)
        if rest[:1] == ["logs"]:
            if len(rest) > 1:
                return Permission("get", name=function_name(rest[1]), subresource="logs")
            return Permission("list", subresource="logs")
        if rest[:1] == ["queues"] and len(rest) >= 2:
            return Permission("get", "queues", name=urllib.parse.unquote(rest[1]))
    # anything else (reports, paths no one serves): a read of functions at least
    return Permission(write or "list")
