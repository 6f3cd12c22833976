"""Invoking functions through a real router, environments and zygote, over REST and gRPC."""

from __future__ import annotations

import base64
import json
import os
import signal
import time

import boto3
import grpc
import pytest
from botocore.config import Config
from klambda.proto import invoker_pb2, invoker_pb2_grpc
from klambda.testing import RouterRunner


@pytest.fixture(scope="module")
def lam(local_router: RouterRunner):  # type: ignore[no-untyped-def]
    return boto3.client(
        "lambda",
        endpoint_url=local_router.url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"max_attempts": 0}, read_timeout=60),
    )


def test_boto3_invoke_returns_result(lam) -> None:  # type: ignore[no-untyped-def]
    resp = lam.invoke(FunctionName="echo", Payload=b'{"name": "Ada"}')
    assert resp["StatusCode"] == 200
    assert resp["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in resp
    body = json.loads(resp["Payload"].read())
    assert body["event"] == {"name": "Ada"}


def test_context_and_reserved_environment(lam) -> None:  # type: ignore[no-untyped-def]
    body = json.loads(lam.invoke(FunctionName="echo", Payload=b"{}")["Payload"].read())
    ctx, env = body["context"], body["env"]
    assert ctx["function_name"] == "echo"
    assert ctx["function_version"] == "$LATEST"
    assert ctx["invoked_function_arn"] == "arn:aws:lambda:us-east-1:000000000000:function:echo"
    assert ctx["memory_limit_in_mb"] == 128
    assert ctx["log_group_name"] == "/aws/lambda/echo"
    assert "[$LATEST]" in ctx["log_stream_name"]
    assert 2000 < ctx["remaining"] <= 3000
    assert len(ctx["aws_request_id"]) == 36
    assert env["COLOR"] == "blue"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "echo"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"] == ctx["log_stream_name"]
    assert env["_HANDLER"] == "app.handler"
    assert env["AWS_REGION"] == "us-east-1"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.11"
    assert env["TZ"] == ":UTC"


def test_handler_exception_is_lambdas_error_json(lam) -> None:  # type: ignore[no-untyped-def]
    resp = lam.invoke(FunctionName="faults", Payload=b'{"mode": "raise"}', LogType="Tail")
    assert resp["StatusCode"] == 200
    assert resp["FunctionError"] == "Unhandled"
    err = json.loads(resp["Payload"].read())
    assert err["errorType"] == "KeyError"
    assert err["errorMessage"] == "'missing'"
    assert any('raise KeyError("missing")' in frame for frame in err["stackTrace"])
    log = base64.b64decode(resp["LogResult"]).decode()
    assert "about to fail" in log
    assert "[ERROR]" in log
    assert "Status: error\tError Type: KeyError" in log


def test_warm_invokes_reuse_one_environment(local_router: RouterRunner) -> None:
    before = local_router.metric("klambda_cold_starts_total", function="echo")
    pids = set()
    calls = []
    for _ in range(50):
        status, _h, body = local_router.invoke("echo", {"n": 1})
        assert status == 200
        out = json.loads(body)
        pids.add(out["pid"])
        calls.append(out["calls"])
    assert len(pids) == 1
    assert calls == sorted(calls)  # one environment's counter, init ran once
    assert local_router.metric("klambda_cold_starts_total", function="echo") - before <= 1


def test_timeout_is_reported_and_next_call_succeeds(local_router: RouterRunner) -> None:
    status, headers, body = local_router.invoke(
        "faults", {"mode": "sleep"}, **{"X-Amz-Log-Type": "Tail"}
    )
    assert status == 200
    assert headers["x-amz-function-error"] == "Unhandled"
    err = json.loads(body)
    assert err["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 2.00 seconds" in err["errorMessage"]
    log = base64.b64decode(headers["x-amz-log-result"]).decode()
    assert "Task timed out after 2.00 seconds" in log
    assert "Status: timeout" in log
    assert "Duration: 2000.00 ms" in log
    status, headers, body = local_router.invoke("faults", {})
    assert status == 200
    assert "x-amz-function-error" not in headers


@pytest.mark.parametrize(
    ("function", "mode", "error_type", "detail"),
    [
        ("faults", "exit", "Runtime.ExitError", "exit status 3"),
        ("faults", "segfault", "Runtime.ExitError", "signal: segmentation fault"),
        ("faults-slow", "memory", "Runtime.OutOfMemory", "signal: killed"),
    ],
)
def test_crashes_become_lambda_errors_and_environment_is_replaced(
    local_router: RouterRunner, function: str, mode: str, error_type: str, detail: str
) -> None:
    _s, _h, body = local_router.invoke(function, {})
    pid_before = json.loads(body)["pid"]
    status, headers, body = local_router.invoke(function, {"mode": mode})
    assert status == 200
    assert headers["x-amz-function-error"] == "Unhandled"
    err = json.loads(body)
    assert err["errorType"] == error_type, err
    assert detail in err["errorMessage"]
    status, headers, body = local_router.invoke(function, {})
    assert status == 200, body
    assert json.loads(body)["pid"] != pid_before


def test_response_too_large(local_router: RouterRunner) -> None:
    status, _headers, body = local_router.invoke("faults", {"mode": "big"})
    assert status == 200
    err = json.loads(body)
    assert err["errorType"] == "Function.ResponseSizeTooLarge"
    assert "6291456" in err["errorMessage"]


def test_unserialisable_result(local_router: RouterRunner) -> None:
    _status, _h, body = local_router.invoke("faults", {"mode": "unserialisable"})
    assert json.loads(body)["errorType"] == "Runtime.MarshalError"


@pytest.mark.parametrize(
    ("function", "error_type", "message"),
    [
        (
            "broken-import",
            "Runtime.ImportModuleError",
            "Unable to import module 'app': No module named 'no_such_module_anywhere'",
        ),
        ("no-handler", "Runtime.HandlerNotFound", "Handler 'handle_it' missing on module 'app'"),
        ("init-fails", "RuntimeError", "cannot connect to the database"),
    ],
)
def test_init_errors(
    local_router: RouterRunner, function: str, error_type: str, message: str
) -> None:
    for _ in range(2):  # each call retries init in a fresh environment, as Lambda does
        status, headers, body = local_router.invoke(function, {})
        assert status == 200
        assert headers["x-amz-function-error"] == "Unhandled"
        err = json.loads(body)
        assert err["errorType"] == error_type
        assert err["errorMessage"] == message


def test_unknown_function(lam, local_router: RouterRunner) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.invoke(FunctionName="nope", Payload=b"{}")
    with grpc.insecure_channel(local_router.grpc_target) as ch:
        stub = invoker_pb2_grpc.InvokerStub(ch)
        with pytest.raises(grpc.RpcError) as err:
            stub.Invoke(invoker_pb2.InvokeRequest(function_name="nope", payload=b"{}"))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        assert "ResourceNotFoundException" in (err.value.details() or "")


ARN = "arn:aws:lambda:us-east-1:000000000000:function:echo"


@pytest.mark.parametrize(
    "name", [ARN, f"{ARN}:$LATEST", "000000000000:function:echo", "echo:$LATEST"]
)
def test_boto3_invoke_by_arn(lam, local_router: RouterRunner, name: str) -> None:  # type: ignore[no-untyped-def]
    resp = lam.invoke(FunctionName=name, Payload=b'{"name": "Ada"}')
    assert resp["StatusCode"] == 200
    assert resp["ExecutedVersion"] == "$LATEST"
    assert json.loads(resp["Payload"].read())["event"] == {"name": "Ada"}
    with grpc.insecure_channel(local_router.grpc_target) as ch:
        stub = invoker_pb2_grpc.InvokerStub(ch)
        reply = stub.Invoke(invoker_pb2.InvokeRequest(function_name=name, payload=b"{}"))
        assert reply.status_code == 200


def test_control_api_takes_arns(lam) -> None:  # type: ignore[no-untyped-def]
    assert lam.get_function(FunctionName=ARN)["Configuration"]["FunctionArn"] == ARN
    conf = lam.get_function_configuration(FunctionName=ARN, Qualifier="$LATEST")
    assert (conf["FunctionName"], conf["Version"]) == ("echo", "$LATEST")
    versions = lam.list_versions_by_function(FunctionName="000000000000:function:echo")
    assert versions["Versions"][0]["Version"] == "$LATEST"
    assert lam.list_aliases(FunctionName=ARN)["Aliases"] == []
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName=ARN)


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("arn:aws:s3:::my-bucket", "is an ARN of s3, not of a Lambda function"),
        ("arn:aws:lambda:us-east-1:000000000000:layer:echo:1", "is not a function ARN"),
        ("e" * 65, "has a function name longer than 64 characters"),
        ("echo world", "has a function name that is not letters, digits"),
    ],
)
def test_names_lambda_refuses_are_refused_naming_the_field(  # type: ignore[no-untyped-def]
    lam, local_router: RouterRunner, name: str, why: str
) -> None:
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as err:
        lam.invoke(FunctionName=name, Payload=b"{}")
    message = err.value.response["Error"]["Message"]
    assert message.startswith("FunctionName: ")
    assert why in message
    with grpc.insecure_channel(local_router.grpc_target) as ch:
        stub = invoker_pb2_grpc.InvokerStub(ch)
        with pytest.raises(grpc.RpcError) as rpc:
            stub.Invoke(invoker_pb2.InvokeRequest(function_name=name, payload=b"{}"))
        assert rpc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert why in (rpc.value.details() or "")


def test_invalid_json(lam) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(lam.exceptions.InvalidRequestContentException):
        lam.invoke(FunctionName="echo", Payload=b"{not json")


def test_payload_over_6mb_names_the_limit(local_router: RouterRunner) -> None:
    status, headers, body = local_router.invoke("echo", "x" * (6 * 1024 * 1024))
    assert status == 413
    assert headers["x-amzn-errortype"] == "RequestEntityTooLargeException"
    assert "6291456 bytes" in json.loads(body)["message"]
    with grpc.insecure_channel(
        local_router.grpc_target, options=[("grpc.max_send_message_length", 8 * 1024 * 1024)]
    ) as ch:
        stub = invoker_pb2_grpc.InvokerStub(ch)
        with pytest.raises(grpc.RpcError) as err:
            stub.Invoke(
                invoker_pb2.InvokeRequest(
                    function_name="echo", payload=b'"' + b"x" * (6 * 1024 * 1024) + b'"'
                )
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "6291456" in (err.value.details() or "")


def test_grpc_invoke_and_health(local_router: RouterRunner) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(local_router.grpc_target) as ch:
        stub = invoker_pb2_grpc.InvokerStub(ch)
        resp = stub.Invoke(
            invoker_pb2.InvokeRequest(
                function_name="echo", payload=b'{"via": "grpc"}', log_tail=True
            )
        )
        assert resp.status_code == 200
        assert json.loads(resp.payload)["event"] == {"via": "grpc"}
        assert resp.executed_version == "$LATEST"
        assert "REPORT RequestId: " + resp.request_id in resp.log_result
        health = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest())
        assert health.status == health_pb2.HealthCheckResponse.SERVING


def test_a_caller_gone_mid_call_leaves_its_invocation_running_to_its_end(
    local_router: RouterRunner,
) -> None:
    # reserved concurrency 1: the call left behind keeps its environment and its place
    with grpc.insecure_channel(local_router.grpc_target) as ch:
        invoke = invoker_pb2_grpc.InvokerStub(ch).Invoke
        slow = invoker_pb2.InvokeRequest(
            function_name="abandoned", payload=b'{"sleep": 2, "tag": "gone"}'
        )
        with pytest.raises(grpc.RpcError) as gone:
            invoke(slow, timeout=0.5)
        assert gone.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        status, _h, body = local_router.invoke("abandoned", {"tag": "meanwhile"})
        assert status == 429, body  # still running: the function's one environment is busy
        time.sleep(2.0)
        # the next call gets its own result, not the one left behind
        status, _h, body = local_router.invoke("abandoned", {"tag": "next"})
        assert (status, json.loads(body)) == (200, {"tag": "next"})
    # both invocations were run and counted (the one left behind once it ended)
    assert local_router.metric("klambda_invocations_total", function="abandoned") == 2
    assert local_router.metric("klambda_throttles_total", function="abandoned") == 1


def test_dry_run(local_router: RouterRunner) -> None:
    status, _h, body = local_router.invoke("echo", {}, **{"X-Amz-Invocation-Type": "DryRun"})
    assert status == 204
    assert body == b""


def test_logs_and_list_functions(lam, local_router: RouterRunner) -> None:  # type: ignore[no-untyped-def]
    names = {f["FunctionName"]: f for f in lam.list_functions()["Functions"]}
    assert {"echo", "faults", "broken-import"} <= set(names)
    assert names["faults"]["Timeout"] == 2
    assert names["echo"]["MemorySize"] == 128
    assert names["echo"]["State"] == "Active"
    conf = lam.get_function(FunctionName="echo")["Configuration"]
    assert conf["Handler"] == "app.handler"
    lam.invoke(FunctionName="echo", Payload=b'{"marker": 1}')
    import urllib.request

    with urllib.request.urlopen(local_router.url + "/klambda/v1/logs/echo", timeout=10) as r:
        text = r.read().decode()
    assert "START RequestId:" in text
    assert "REPORT RequestId:" in text
    assert "echoing" in text


def test_metrics_cover_invocations(local_router: RouterRunner) -> None:
    local_router.invoke("echo", {})
    text = local_router.metrics()
    for name in (
        "klambda_invocations_total",
        "klambda_duration_seconds_bucket",
        "klambda_cold_starts_total",
        "klambda_init_duration_seconds_bucket",
        "klambda_concurrent_executions",
        "klambda_billed_gb_seconds_total",
        "klambda_estimated_cost_dollars_total",
        "klambda_errors_total",
    ):
        assert name in text, name
    assert local_router.metric("klambda_invocations_total", function="echo", outcome="success") >= 1


def test_grpc_reflection_lists_the_invoker(local_router: RouterRunner) -> None:
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    with grpc.insecure_channel(local_router.grpc_target) as ch:
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        response = next(iter(stub.ServerReflectionInfo(iter([request]))))
        names = {s.name for s in response.list_services_response.service}
    assert {"klambda.v1.Invoker", "grpc.health.v1.Health"} <= names


def test_a_dead_zygote_is_started_again(local_router: RouterRunner) -> None:
    zygotes = local_router.zygotes()
    assert len(zygotes) == 1
    os.kill(zygotes[0], signal.SIGKILL)
    # cold starts need the zygote (the first may take the spare it forked before it died):
    # it is started again, and the calls succeed
    for function in ("no-handler", "no-handler", "broken-import", "echo"):
        status, _h, _b = local_router.invoke(function, {})
        assert status == 200
    fresh = local_router.zygotes()
    assert len(fresh) == 1
    assert fresh != zygotes
    assert local_router.proc.poll() is None
