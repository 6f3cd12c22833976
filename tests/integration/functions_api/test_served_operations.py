"""Which of the operations in botocore's Lambda model a local router serves, found by asking
one: every operation's method and path are sent with a function that does not exist, and
an operation counts as served when the router answers as Lambda (a 2xx, or a Lambda error
with `x-amzn-ErrorType`) rather than with `UnknownOperationException`, its answer for a
path or method it has no route for. The list is printed, and the README's list must be the same."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from pathlib import Path

import botocore.session
from klambda.testing import RouterRunner

ROOT = Path(__file__).resolve().parents[3]
FUNCTIONS = ROOT / "tests/integration/functions"
SAMPLE = {
    "FunctionName": "no-such-function",
    "Resource": "arn:aws:lambda:us-east-1:000000000000:function:no-such-function",
    "ARN": "arn:aws:lambda:us-east-1:000000000000:function:no-such-function",
}
# what the brief of the control API asks for, at the least
REQUIRED = {
    "CreateFunction", "UpdateFunctionCode", "UpdateFunctionConfiguration", "DeleteFunction",
    "PutFunctionEventInvokeConfig", "GetFunctionEventInvokeConfig",
    "UpdateFunctionEventInvokeConfig", "DeleteFunctionEventInvokeConfig",
    "ListFunctionEventInvokeConfigs", "TagResource", "UntagResource", "ListTags",
    "Invoke", "GetFunction", "ListFunctions", "PublishVersion", "CreateAlias",
}  # fmt: skip


def served(url: str, method: str, path: str) -> bool:
    body = b"{}" if method in ("POST", "PUT", "PATCH") else None
    req = urllib.request.Request(url + path, data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return 200 <= resp.status < 300
    except urllib.error.HTTPError as err:
        return err.headers.get("x-amzn-ErrorType") not in (None, "UnknownOperationException")


def operations() -> dict[str, tuple[str, str]]:
    model = botocore.session.get_session().get_service_model("lambda")
    out = {}
    for name in model.operation_names:
        http = model.operation_model(name).http
        uri = re.sub(r"\{(\w+)\+?\}", lambda m: SAMPLE.get(m.group(1), "x1"), http["requestUri"])
        out[name] = (http["method"], uri)
    return out


def readme_list() -> set[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split("<!-- served operations -->")[1].split("<!-- end -->")[0]
    return set(re.findall(r"`(\w+)`", block))


def test_served_operations_of_the_lambda_model(tmp_path: Path) -> None:
    ops = operations()
    with RouterRunner.up(FUNCTIONS, "-q", workdir=tmp_path) as router:
        yes = sorted(name for name, (m, p) in ops.items() if served(router.url, m, p))
    print(f"\n{len(yes)} of the {len(ops)} operations of botocore's Lambda model are served:")
    print(", ".join(yes))
    print("not served:", ", ".join(sorted(set(ops) - set(yes))))
    assert set(yes) >= REQUIRED, f"not served: {sorted(REQUIRED - set(yes))}"
    assert readme_list() == set(yes), "README's list of served operations is stale"
