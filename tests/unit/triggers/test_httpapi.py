"""API Gateway HTTP API's pure rules: which route a request takes, the event of payload
format 2.0 and 1.0, and the mapping of a function's result to the response."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from klambda.triggers.httpapi import (
    Api,
    BadResponse,
    IamCaller,
    Request,
    Route,
    RouteTable,
    event_v1,
    event_v2,
    response_v1,
    response_v2,
)

ROUTES = [
    Route("GET", "/items/{id}", "get-item"),
    Route("GET", "/items/special", "special"),
    Route("ANY", "/items/{id}", "any-item"),
    Route("POST", "/items", "create"),
    Route("ANY", "/files/{path+}", "files"),
    Route("GET", "/", "root"),
]

MATCHES = [
    ("GET", "/items/42", "get-item", {"id": "42"}),
    ("DELETE", "/items/42", "any-item", {"id": "42"}),
    ("GET", "/items/special", "special", {}),
    ("POST", "/items", "create", {}),
    ("GET", "/files/a/b/c.txt", "files", {"path": "a/b/c.txt"}),
    ("GET", "/", "root", {}),
    ("GET", "/items/a%20b", "get-item", {"id": "a b"}),
    ("GET", "/items", None, None),
    ("GET", "/items/1/2", None, None),
    ("GET", "/files", None, None),
    ("PUT", "/items", None, None),
]


@pytest.mark.parametrize(("method", "path", "target", "params"), MATCHES)
def test_most_specific_route_wins(
    method: str, path: str, target: str | None, params: dict[str, str] | None
) -> None:
    table = RouteTable()
    for r in ROUTES:
        assert table.add(r) is None
    found = table.match(method, path)
    if target is None:
        assert found is None
    else:
        assert found is not None
        assert (found[0].target, found[1]) == (target, params)


def test_default_route_takes_the_rest_and_duplicates_keep_the_first() -> None:
    table = RouteTable()
    table.add(Route("GET", "/a", "a"))
    table.add(Route("ANY", "$default", "fallback"))
    assert table.add(Route("GET", "/a", "again")) == "a"
    found = table.match("POST", "/nowhere")
    assert found is not None
    assert found[0].target == "fallback"
    assert found[0].route_key == "$default"


REQ = Request(
    method="POST",
    raw_path="/items/42",
    raw_query="a=1&a=2&b=x%20y",
    headers=[
        ("Host", "api.example.com:8080"),
        ("Content-Type", "application/json"),
        ("Cookie", "s=1; t=2"),
        ("X-Multi", "one"),
        ("X-Multi", "two"),
        ("User-Agent", "curl/8"),
    ],
    body=b'{"n": 1}',
    source_ip="127.0.0.1",
    request_id="rid-1",
    host="api.example.com:8080",
    time=1700000000.5,
)
API = Api("klambda", "000000000000")


def test_event_v2() -> None:
    e = event_v2(REQ, "POST /items/{id}", {"id": "42"}, API)
    assert e["version"] == "2.0"
    assert e["routeKey"] == "POST /items/{id}"
    assert e["rawPath"] == "/items/42"
    assert e["rawQueryString"] == "a=1&a=2&b=x%20y"
    assert e["cookies"] == ["s=1", "t=2"]
    assert "cookie" not in e["headers"]
    assert e["headers"]["x-multi"] == "one,two"
    assert e["queryStringParameters"] == {"a": "1,2", "b": "x y"}
    assert e["pathParameters"] == {"id": "42"}
    assert e["body"] == '{"n": 1}'
    assert e["isBase64Encoded"] is False
    ctx = e["requestContext"]
    assert ctx["domainName"] == "api.example.com"
    assert ctx["domainPrefix"] == "api"
    assert ctx["http"] == {
        "method": "POST",
        "path": "/items/42",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "curl/8",
    }
    assert ctx["time"] == "14/Nov/2023:22:13:20 +0000"
    assert ctx["timeEpoch"] == 1700000000500
    assert "stageVariables" not in e


def test_event_v2_of_an_iam_function_url() -> None:
    caller = IamCaller("AKIDALICE", "123456789012", "uid-1", "arn:aws:iam::123:user/a", "uid-1")
    ctx = event_v2(REQ, "$default", {}, API, caller)["requestContext"]
    # Lambda's payload 2.0 for AWS_IAM URLs: the authorizer after the ids, these fields
    assert list(ctx)[:3] == ["accountId", "apiId", "authorizer"]
    assert ctx["authorizer"] == {
        "iam": {
            "accessKey": "AKIDALICE",
            "accountId": "123456789012",
            "callerId": "uid-1",
            "cognitoIdentity": None,
            "principalOrgId": None,
            "userArn": "arn:aws:iam::123:user/a",
            "userId": "uid-1",
        }
    }
    assert "authorizer" not in event_v2(REQ, "$default", {}, API)["requestContext"]


def test_binary_bodies_are_base64() -> None:
    req = Request("PUT", "/f", "", [("Content-Type", "image/png")], b"\x89PNG\x00", "::1", "r")
    e = event_v2(req, "$default", {}, API)
    assert e["isBase64Encoded"] is True
    assert base64.b64decode(e["body"]) == b"\x89PNG\x00"
    assert "body" not in event_v2(Request("GET", "/", "", [], b"", "::1", "r"), "$default", {}, API)


def test_event_v1() -> None:
    e = event_v1(REQ, Route("POST", "/items/{id}", "t", "1.0"), {"id": "42"}, API)
    assert e["version"] == "1.0"
    assert e["resource"] == "/items/{id}"
    assert e["path"] == "/items/42"
    assert e["httpMethod"] == "POST"
    assert e["headers"]["X-Multi"] == "two"
    assert e["multiValueHeaders"]["X-Multi"] == ["one", "two"]
    assert e["queryStringParameters"] == {"a": "2", "b": "x y"}
    assert e["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": ["x y"]}
    assert e["requestContext"]["identity"]["sourceIp"] == "127.0.0.1"
    assert e["requestContext"]["resourcePath"] == "/items/{id}"


def mapped(result: Any, v1: bool = False) -> tuple[int, list[tuple[str, str]], bytes]:
    r = (response_v1 if v1 else response_v2)(json.dumps(result).encode())
    return r.status, r.headers, r.body


def test_response_mapping_v2() -> None:
    assert mapped({"hello": "world"}) == (
        200,
        [("content-type", "application/json")],
        b'{"hello": "world"}',
    )
    assert mapped("plain") == (200, [("content-type", "application/json")], b"plain")
    status, headers, body = mapped(
        {
            "statusCode": 201,
            "headers": {"Content-Type": "text/plain", "X-N": 5},
            "cookies": ["a=1; Path=/", "b=2"],
            "body": base64.b64encode(b"\x00bin").decode(),
            "isBase64Encoded": True,
        }
    )
    assert status == 201
    assert body == b"\x00bin"
    assert headers == [
        ("Content-Type", "text/plain"),
        ("X-N", "5"),
        ("set-cookie", "a=1; Path=/"),
        ("set-cookie", "b=2"),
    ]


def test_response_mapping_v1_and_bad_results() -> None:
    status, headers, body = mapped(
        {"statusCode": 200, "multiValueHeaders": {"X-A": ["1", "2"]}, "body": "ok"}, v1=True
    )
    assert (status, body) == (200, b"ok")
    assert ("X-A", "1") in headers
    assert ("X-A", "2") in headers
    with pytest.raises(BadResponse, match="statusCode"):
        mapped({"body": "no status"}, v1=True)
    with pytest.raises(BadResponse, match="not an HTTP status"):
        mapped({"statusCode": 999})
    with pytest.raises(BadResponse, match="not JSON"):
        response_v2(b"{nope")
    with pytest.raises(BadResponse, match="base64"):
        mapped({"statusCode": 200, "body": "***", "isBase64Encoded": True})
