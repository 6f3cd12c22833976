"""Lambda's REST API under random input, against a real router.

Requests are built from botocore's own Lambda service model: every operation, with
parameters drawn from each member's shape (unicode and huge strings, out-of-range numbers,
nested structures), serialized as the AWS SDKs serialize them. Beside those, malformed
requests: random bodies, headers, encodings and names. Whatever comes, the router answers
with a status Lambda documents for the operation (never a 5xx that is not one of
Lambda's), a JSON error with a message for a refusal, and it keeps running.
"""

from __future__ import annotations

import http.client
import json
import urllib.parse
from typing import Any

import botocore.session
from botocore.model import OperationModel, Shape
from botocore.serialize import create_serializer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from klambda.testing import RouterRunner

from tests.fuzzcount import BOUND, EXAMPLES, Huge

MODEL = botocore.session.get_session().get_service_model("lambda")
SERIALIZER = create_serializer("rest-json", include_validation=False)
OPERATIONS = sorted(MODEL.operation_names)
FUZZ = settings(
    max_examples=BOUND,
    deadline=None,
    derandomize=True,  # the same examples every run: a failure is reproducible
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

NAMES = st.one_of(
    st.sampled_from(["target", "target:$LATEST", "target:1", "missing", "target:live"]),
    st.text(min_size=0, max_size=300),
    st.text(alphabet="abcz-:.$/%", min_size=1, max_size=80),
    st.just("a" * 5000),
)


def documented_5xx(op: OperationModel) -> set[int]:
    """The 5xx statuses Lambda documents for `op` (ServiceException and its kin)."""
    return {
        s.metadata["error"]["httpStatusCode"]
        for s in op.error_shapes
        if s.metadata.get("error", {}).get("httpStatusCode", 0) >= 500
    }


def shape_values(shape: Shape, depth: int = 0) -> st.SearchStrategy[Any]:
    """Values of a botocore shape: within its type, not within its constraints."""
    t = shape.type_name
    if t == "structure":
        members = dict(shape.members)
        if depth > 3 or not members:
            return st.just({})
        required = set(shape.required_members)
        return st.fixed_dictionaries(
            {k: shape_values(v, depth + 1) for k, v in members.items() if k in required},
            optional={
                k: shape_values(v, depth + 1) for k, v in members.items() if k not in required
            },
        )
    if t == "list":
        return st.lists(shape_values(shape.member, depth + 1), max_size=3)  # type: ignore[attr-defined]
    if t == "map":
        return st.dictionaries(
            st.text(max_size=20),
            shape_values(shape.value, depth + 1),  # type: ignore[attr-defined]
            max_size=3,
        )
    if t == "string":
        if shape.enum:
            return st.one_of(st.sampled_from(shape.enum), st.text(max_size=10))
        if shape.name in ("FunctionName", "NamespacedFunctionName", "FunctionArn"):
            return NAMES
        return st.one_of(
            st.text(max_size=40), st.sampled_from(["x" * 5000, "x" * 70_000]).map(Huge)
        )
    if t in ("integer", "long"):
        return st.one_of(st.integers(-(2**31), 2**31 - 1), st.sampled_from([0, -1, 2**63 - 1]))
    if t == "boolean":
        return st.booleans()
    if t in ("double", "float"):
        return st.floats(allow_nan=False, allow_infinity=False)
    if t == "blob":
        return st.one_of(st.binary(max_size=200), st.just(b'{"a": 1}'))
    if t == "timestamp":
        return st.datetimes()
    return st.none()


@st.composite
def api_calls(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    op = MODEL.operation_model(draw(st.sampled_from(OPERATIONS)))
    params = draw(shape_values(op.input_shape)) if op.input_shape is not None else {}
    try:
        request = SERIALIZER.serialize_to_request(params, op)
    except Exception:  # a value the SDK itself could not put on the wire
        request = SERIALIZER.serialize_to_request({}, op)
    return op.name, request


def send(r: RouterRunner, method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", r.http_port, timeout=60)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for k, v in headers.items():
            # as sent: UTF-8, control characters and all, but for line breaks, which no
            # HTTP client sends inside a header (http.client refuses to)
            conn.putheader(k, v.replace("\r", " ").replace("\n", " ").encode())
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def check_answer(status: int, headers: dict[str, str], body: bytes, allowed_5xx: set[int]) -> None:
    # 500 is Lambda's ServiceException, documented everywhere: here, a crash in disguise
    assert status < 500 or (status in allowed_5xx and status != 500), (status, body[:500])
    lower = {k.lower(): v for k, v in headers.items()}
    if (
        status in (400, 413, 414, 431)
        and "x-amzn-errortype" not in lower
        and lower.get("content-type", "").startswith("text/plain")
    ):
        return  # the HTTP parser's own refusal: a line over 8 KiB, a control character
    if status >= 400:
        err = json.loads(body)
        message = err.get("message") or err.get("Message")
        assert message, body[:500]


@FUZZ
@given(call=api_calls())
def test_every_operation_of_the_lambda_model(
    fuzzed_router: RouterRunner, call: tuple[str, dict[str, Any]]
) -> None:
    name, req = call
    EXAMPLES["REST: Lambda operations (botocore model)"] += 1
    query = urllib.parse.urlencode(req["query_string"], doseq=True)
    url = req["url_path"]  # may carry a fixed query of its own (?List=ALL), as botocore's
    path = url + (("&" if "?" in url else "?") + query if query else "")
    body = req["body"] if isinstance(req["body"], bytes) else str(req["body"]).encode()
    headers = {k: v for k, v in req["headers"].items() if k.lower() != "content-length"}
    status, h, resp = send(fuzzed_router, req["method"], path, headers, body)
    op = MODEL.operation_model(name)
    check_answer(status, h, resp, documented_5xx(op))
    if h.get("x-amzn-ErrorType") == "InvalidParameterValueException":
        # a refusal of a parameter names it (its wire name or its name in the model)
        EXAMPLES["REST: InvalidParameterValue refusals checked for the field"] += 1
        message = json.loads(resp)["message"]
        names = {m for m in op.input_shape.members} | {
            s.serialization.get("name", "") for s in op.input_shape.members.values()
        }
        assert any(n and n.lower() in message.lower() for n in names), (name, message)


ROUTES = [
    ("POST", "/2015-03-31/functions/{name}/invocations"),
    ("GET", "/2015-03-31/functions/{name}"),
    ("GET", "/2015-03-31/functions/{name}/configuration"),
    ("POST", "/2015-03-31/functions/{name}/versions"),
    ("POST", "/2015-03-31/functions/{name}/aliases"),
    ("PUT", "/2015-03-31/functions/{name}/aliases/live"),
    ("PUT", "/2017-10-31/functions/{name}/concurrency"),
    ("PUT", "/2019-09-30/functions/{name}/provisioned-concurrency?Qualifier=1"),
    ("DELETE", "/2015-03-31/functions/{name}?Qualifier=7"),
    ("GET", "/klambda/v1/functions/{name}/dlq"),
    ("POST", "/klambda/v1/functions/{name}/dlq/redrive"),
    ("GET", "/klambda/v1/logs/{name}"),
]
HEADERS = st.dictionaries(
    st.sampled_from(
        [
            "X-Amz-Invocation-Type",
            "X-Amz-Log-Type",
            "X-Amz-Client-Context",
            "X-Amzn-Trace-Id",
            "Content-Type",
            "Content-Encoding",
            "Transfer-Encoding-Not",
            "Accept",
        ]
    ),
    st.one_of(
        st.sampled_from(["Event", "RequestResponse", "DryRun", "Tail", "gzip", "br", "x/y"]),
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=300),
    ),
    max_size=4,
)
BODIES = st.one_of(
    st.binary(max_size=2000),
    st.text(max_size=500).map(str.encode),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=20,
    ).map(lambda v: json.dumps(v).encode()),
    st.integers(1, 200_000).map(lambda n: b"[" * n + b"]" * n),  # nested too deep to parse
    st.just(b"\xff\xfe\x00garbage"),
)


@FUZZ
@given(
    route=st.sampled_from(ROUTES),
    name=NAMES,
    headers=HEADERS,
    body=BODIES,
)
def test_malformed_requests(
    fuzzed_router: RouterRunner,
    route: tuple[str, str],
    name: str,
    headers: dict[str, str],
    body: bytes,
) -> None:
    EXAMPLES["REST: malformed bodies, headers, encodings, names"] += 1
    method, template = route
    path = template.replace("{name}", urllib.parse.quote(name, safe=":$"))
    status, h, resp = send(fuzzed_router, method, path, headers, body)
    check_answer(status, h, resp, set())


def test_the_router_is_still_serving(fuzzed_router: RouterRunner) -> None:
    # the fuzzing may have set any reserved concurrency (0 is an emergency stop): clear it
    status, _h, _b = send(
        fuzzed_router, "DELETE", "/2017-10-31/functions/target/concurrency", {}, b""
    )
    assert status == 204
    status, _, body = fuzzed_router.invoke("target", {"still": "here"})
    assert (status, json.loads(body)) == (200, {"still": "here"})
