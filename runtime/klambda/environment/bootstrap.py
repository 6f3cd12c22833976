"""One execution environment: init once, then invoke the handler one request at a time.

`run()` is entered in a freshly forked child of the zygote. It applies the function's
limits and environment, imports the handler module (Lambda's init phase, timed and
reported), and serves INVOKE frames until its socket closes. Handler output is sent back
as LOG frames on the same socket, before the RESULT, so the worker sees a request's log
lines and its response in order.

Logging is set up as Lambda's Python runtime sets it up, from the variables Lambda sets:
with `AWS_LAMBDA_LOG_FORMAT=JSON`, `logging` records are Lambda's JSON records (timestamp,
level, message, logger, requestId, the exception's fields and any `extra`), print() lines
go out as they are, and whatever is below `AWS_LAMBDA_LOG_LEVEL` is dropped here, before
it costs a frame (a print() line counts as INFO unless it is a JSON object with a "level",
as Lambda reads it). In Text format, lines are tagged `[LEVEL]\ttime\trequestId\t...`.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.machinery
import importlib.util
import io
import json
import logging
import os
import resource
import signal
import socket
import sys
import time
import traceback
from typing import Any, NoReturn

from klambda.environment import protocol, streaming
from klambda.environment.context import LambdaContext

RESPONSE_MAX_BYTES = 6 * 1024 * 1024


def timestamp(t: float | None = None) -> str:
    t = time.time() if t is None else t
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


# Lambda's level ranks (klambda.logs.levels, which this process may not import; a test
# checks they agree) and the `logging` level each application level sets on the root
# logger (Python has no TRACE: Lambda's runtime uses DEBUG for it).
LEVEL_RANK = {
    "TRACE": 5,
    "DEBUG": 10,
    "INFO": 20,
    "WARN": 30,
    "WARNING": 30,
    "ERROR": 40,
    "FATAL": 50,
    "CRITICAL": 50,
}
PYTHON_LEVEL = {
    "TRACE": logging.DEBUG,
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARN": logging.WARNING,
    "ERROR": logging.ERROR,
    "FATAL": logging.CRITICAL,
}


class LogSettings:
    """The format and application level in force, from Lambda's variables."""

    def __init__(self, env: dict[str, str]) -> None:
        self.json = env.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON"
        level = env.get("AWS_LAMBDA_LOG_LEVEL", "").upper()
        self.level = level if level in PYTHON_LEVEL else None
        # records below this rank are dropped (JSON format only, as in Lambda)
        self.floor = LEVEL_RANK[self.level or "INFO"] if self.json else 0

    def line_kept(self, line: str) -> bool:
        """A print() line in JSON format: INFO, or the "level" of a JSON object."""
        if not self.floor:
            return True
        level = "INFO"
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except ValueError:
                obj = None
            if isinstance(obj, dict) and isinstance(obj.get("level"), str):
                level = obj["level"].upper()
        return LEVEL_RANK.get(level, LEVEL_RANK["INFO"]) >= self.floor


class Channel:
    """The environment's end of the socketpair."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = sock.makefile("rb", buffering=65536)
        self.request_id = ""

    def send(self, kind: int, meta: dict[str, Any] | None = None, body: bytes = b"") -> None:
        self.sock.sendall(protocol.encode(kind, meta, body))

    def log(self, record: str) -> None:
        self.send(protocol.LOG, None, record.encode("utf-8", "replace"))


class LogWriter(io.TextIOBase):
    """sys.stdout / sys.stderr: each complete line becomes one tagged log record."""

    def __init__(self, channel: Channel, fd: int, settings: LogSettings | None = None) -> None:
        self._channel = channel
        self._fd = fd
        self._pending = ""
        self._settings = settings
        self._json = settings is not None and settings.json

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def write(self, s: str) -> int:
        self._pending += s
        if "\n" in self._pending:
            *lines, self._pending = self._pending.split("\n")
            for line in lines:
                self._emit(line)
        return len(s)

    def flush(self) -> None:
        if self._pending:
            line, self._pending = self._pending, ""
            self._emit(line)

    def _emit(self, line: str) -> None:
        if self._json:  # plain, as printed, unless below the application level
            assert self._settings is not None
            if self._settings.line_kept(line):
                self._channel.log(line)
            return
        rid = self._channel.request_id
        self._channel.log(f"{timestamp()}\t{rid}\t{line}" if rid else f"{timestamp()}\t{line}")


class LambdaLogHandler(logging.Handler):
    """`logging` records in the Lambda Python runtime's format: [LEVEL] time id message."""

    def __init__(self, channel: Channel) -> None:
        super().__init__()
        self._channel = channel

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = self.format(record)
            rid = self._channel.request_id
            self._channel.log(f"[{record.levelname}]\t{timestamp(record.created)}\t{rid}\t{msg}")
        except Exception:
            self.handleError(record)


class JsonLogHandler(logging.Handler):
    """`logging` records as Lambda's JSON application records, below the level dropped."""

    # LogRecord's own attributes: everything else on a record came from `extra=`
    RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

    def __init__(self, channel: Channel, settings: LogSettings) -> None:
        super().__init__()
        self._channel = channel
        self._floor = settings.floor

    def emit(self, record: logging.LogRecord) -> None:
        try:
            levelno = min(50, max(0, record.levelno)) // 10 * 10
            level = logging.getLevelName(levelno)
            if LEVEL_RANK.get(level, LEVEL_RANK["INFO"]) < self._floor:
                return
            self._channel.log(self.record(record, level))
        except Exception:
            self.handleError(record)

    def record(self, record: logging.LogRecord, level: str) -> str:
        out: dict[str, Any] = {
            "timestamp": timestamp(record.created),
            "level": level,
            "message": record.getMessage(),
            "logger": record.name,
        }
        if record.exc_info and record.exc_info[0] is not None:
            exc_type, exc, tb = record.exc_info
            out["stackTrace"] = traceback.format_tb(tb)
            out["errorType"] = exc_type.__name__
            out["errorMessage"] = str(exc)
        out["requestId"] = self._channel.request_id
        if record.exc_info and record.exc_info[0] is not None:
            out["location"] = f"{record.pathname}:{record.funcName}:{record.lineno}"
        for key, value in record.__dict__.items():
            if key not in self.RESERVED and key not in out and value is not None:
                out[key] = value
        return json.dumps(out, ensure_ascii=False, default=str)


def setup_logging(channel: Channel, settings: LogSettings) -> None:
    """stdout, stderr and the root logger, as Lambda's Python runtime configures them."""
    sys.stdout = LogWriter(channel, 1, settings)
    sys.stderr = LogWriter(channel, 2, settings)
    root = logging.getLogger()
    handler: logging.Handler = (
        JsonLogHandler(channel, settings) if settings.json else LambdaLogHandler(channel)
    )
    root.handlers[:] = [handler]
    if settings.level is not None:
        root.setLevel(PYTHON_LEVEL[settings.level])


def log_error(channel: Channel, settings: LogSettings, body: dict[str, Any]) -> None:
    """An unhandled error, as Lambda's runtime logs it in the function's format."""
    if settings.json:
        if LEVEL_RANK["ERROR"] >= settings.floor:
            record = {"timestamp": timestamp(), "level": "ERROR", **body}
            record.setdefault("requestId", channel.request_id)
            channel.log(json.dumps(record, ensure_ascii=False, default=str))
        return
    rid = channel.request_id
    text = f"{body['errorType']}: {body['errorMessage']}"
    if not rid:  # init
        channel.log(f"[ERROR] {text}")
        return
    channel.log(
        f"[ERROR]\t{timestamp()}\t{rid}\t{text}\n"
        "Traceback (most recent call last):\n" + "".join(body["stackTrace"]).rstrip()
    )


def _json_default(o: Any) -> Any:
    # Lambda's Python runtime serialises Decimal (what DynamoDB returns) as a number. A
    # Decimal exists only where its module was imported: none is, until a handler does.
    decimal = sys.modules.get("decimal")
    if decimal is not None and isinstance(o, decimal.Decimal):
        return int(o) if o == o.to_integral_value() else float(o)
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


RUNTIME_DIR = os.path.dirname(os.path.abspath(__file__))


def _user_frames(tb: Any) -> list[str]:
    """The traceback without the runtime's and importlib's own frames."""
    frames = [
        f
        for f in traceback.extract_tb(tb)
        if not f.filename.startswith((RUNTIME_DIR, "<frozen")) and "importlib" not in f.filename
    ]
    return traceback.format_list(frames)


def error_body(
    exc: BaseException,
    error_type: str | None = None,
    message: str | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "errorMessage": str(exc) if message is None else message,
        "errorType": error_type or type(exc).__name__,
    }
    if request_id:
        body["requestId"] = request_id
    body["stackTrace"] = _user_frames(exc.__traceback__)
    return body


def _apply_limits(spec: dict[str, Any]) -> None:
    pid = str(os.getpid())
    for procs in spec.get("cgroup_procs") or ():
        with open(procs, "w") as f:
            f.write(pid)
    rlimit = spec.get("rlimit_as")
    if rlimit:
        resource.setrlimit(resource.RLIMIT_AS, (rlimit, rlimit))
    _enter_sandbox(spec)


def _enter_sandbox(spec: dict[str, Any]) -> None:
    """The function's own uid, /tmp and view of the code, when the worker gives one (its
    zygote imported klambda.environment.sandbox ahead then: a worker that gives none, not
    running as root, never needs it)."""
    if spec.get("sandbox"):
        from klambda.environment import sandbox

        sandbox.enter(spec["sandbox"])


def _init(spec: dict[str, Any], channel: Channel) -> Any:
    """Import the handler module (Lambda's init phase); the handler, or an error body."""
    module_name, _, func_name = spec["handler"].rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except SyntaxError as exc:
        raise InitError(
            exc, "Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}"
        ) from None
    except ImportError as exc:
        raise InitError(
            exc, "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}"
        ) from None
    except SystemExit as exc:
        raise InitError(
            exc, "Runtime.ExitError", f"Runtime exited with error: exit status {exc.code}"
        ) from None
    except Exception as exc:
        raise InitError(exc, None, None) from None
    handler = getattr(module, func_name, None)
    if not callable(handler):
        raise InitError(
            None,
            "Runtime.HandlerNotFound",
            f"Handler '{func_name}' missing on module '{module_name}'",
        )
    return handler


class InitError(Exception):
    def __init__(self, exc: BaseException | None, error_type: str | None, message: str | None):
        super().__init__(message)
        self.exc = exc
        self.error_type = error_type
        self.message = message

    def body(self) -> dict[str, Any]:
        if self.exc is None:
            return {"errorMessage": self.message, "errorType": self.error_type, "stackTrace": []}
        if self.error_type == "Runtime.ImportModuleError":
            return {"errorMessage": self.message, "errorType": self.error_type, "stackTrace": []}
        return error_body(self.exc, self.error_type, self.message)


def _encode_result(result: Any, rid: str) -> tuple[bytes, int]:
    try:
        body = json.dumps(result, default=_json_default).encode()
    except (TypeError, ValueError, RecursionError) as exc:
        err = {
            "errorMessage": f"Unable to marshal response: {exc}",
            "errorType": "Runtime.MarshalError",
            "requestId": rid,
            "stackTrace": [],
        }
        return json.dumps(err).encode(), protocol.ERROR
    if len(body) > RESPONSE_MAX_BYTES:
        err = {
            "errorMessage": f"Response payload size ({len(body)} bytes) exceeded maximum "
            f"allowed payload size ({RESPONSE_MAX_BYTES} bytes).",
            "errorType": "Function.ResponseSizeTooLarge",
            "requestId": rid,
            "stackTrace": [],
        }
        return json.dumps(err).encode(), protocol.ERROR
    return body, protocol.RESULT


def prepare(sock: socket.socket, isolate: bool = False) -> Channel:
    """What a new environment does before it knows its function; a spare does it while it
    waits for its spec, so that a cold start does not. `isolate`: enter a private mount
    namespace, the first step of a sandbox (klambda.environment.sandbox.isolate)."""
    os.setpgid(0, 0)  # a Ctrl-C meant for the router must not reach handlers
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    # the zygote's (the router's) variables are none of the function's business
    os.environ.clear()
    if isolate:
        from klambda.environment import sandbox

        # a failure here is raised again, and reported, by sandbox.enter during init
        with contextlib.suppress(OSError):
            sandbox.isolate()
    return Channel(sock)


_REHEARSAL_SOURCE = "def handler(event, context):\n    return {'ok': event}\n"


def rehearse(channel: Channel) -> None:
    """Run, in a spare, the steps every cold start runs first, on made-up data, and leave
    nothing behind. A process forked from the zygote pays for its first write to each
    page it shares with it (a copy) and for the first run of each code path: decoding
    the spec, filling os.environ, setting up logging, compiling the handler's module,
    the context, the handler's signature, encoding the result cost ~1.5 ms more the
    first time than the second. A spare pays that while it waits."""
    env = {f"AWS_LAMBDA_REHEARSAL_{i}": "x" * 40 for i in range(24)}
    frame = protocol.encode(protocol.SPEC, {"env": env, "handler": "app.handler"})
    spec = protocol.decode_meta(frame[protocol.HEADER.size :])
    stdout, stderr = sys.stdout, sys.stderr
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        os.environ.update(spec["env"])
        setup_logging(channel, LogSettings(spec["env"]))
    finally:
        os.environ.clear()
        sys.stdout, sys.stderr = stdout, stderr
        root.handlers[:] = handlers
        root.setLevel(level)
    # the path finder's look into a folder, a module made from source: what importing the
    # handler's module does (the finder it caches for the folder is dropped again)
    importlib.machinery.PathFinder.find_spec("klambda_rehearsal", [RUNTIME_DIR])
    sys.path_importer_cache.pop(RUNTIME_DIR, None)
    spec_ = importlib.util.spec_from_loader("klambda_rehearsal", loader=None)
    assert spec_ is not None
    module = importlib.util.module_from_spec(spec_)
    loader = importlib.machinery.SourceFileLoader("klambda_rehearsal", "<rehearsal>")
    code = loader.source_to_code(_REHEARSAL_SOURCE.encode(), "<rehearsal>")
    exec(code, module.__dict__)
    handler = module.handler
    ctx = LambdaContext(
        request_id="rehearsal",
        deadline=time.time() + 1,
        function_name="rehearsal",
        function_version="$LATEST",
        invoked_function_arn="arn",
        memory_limit_in_mb=128,
        log_group_name="group",
        log_stream_name="stream",
    )
    streaming.wants_writer(handler)
    streaming._WRITERS.pop(id(handler), None)  # an id the real handler may get
    body, _kind = _encode_result(handler(json.loads(b'{"a": 1}'), ctx), "rehearsal")
    protocol.encode(protocol.RESULT, {"duration_ms": 0.1, "max_rss_kb": 1}, body)
    resource.getrusage(resource.RUSAGE_SELF)
    timestamp()


def run(sock: socket.socket, spec: dict[str, Any], channel: Channel | None = None) -> NoReturn:
    """The environment's main: never returns. `channel`: what `prepare` returned, if it
    ran already (a spare)."""
    if channel is None:
        channel = prepare(sock)
    started = time.perf_counter()
    try:
        _apply_limits(spec)
        os.environ.update(spec["env"])  # cleared by prepare
        code_root = spec["code_root"]
        os.chdir(code_root)
        sys.path.insert(0, code_root)
        # the layers' packages (/opt/python...), after the function's own code
        sys.path[1:1] = spec.get("python_paths", [])
        settings = LogSettings(spec["env"])
        setup_logging(channel, settings)
        handler = _init(spec, channel)
    except InitError as err:
        body = err.body()
        log_error(channel, settings, body)
        channel.send(protocol.INIT_ERROR, None, json.dumps(body).encode())
        os._exit(1)
    except BaseException as exc:  # a failure of the environment itself, not of user code
        body = error_body(exc, "Runtime.Unknown", f"environment setup failed: {exc}")
        channel.send(protocol.INIT_ERROR, None, json.dumps(body).encode())
        os._exit(1)
    channel.send(
        protocol.READY,
        {
            "init_ms": (time.perf_counter() - started) * 1000,
            "pid": os.getpid(),
            "max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        },
    )
    serve(channel, spec, handler, settings)


def serve(channel: Channel, spec: dict[str, Any], handler: Any, settings: LogSettings) -> NoReturn:
    base = dict(
        function_name=spec["function_name"],
        function_version=spec["version"],
        memory_limit_in_mb=spec["memory_mb"],
        log_group_name=spec["log_group"],
        log_stream_name=spec["log_stream"],
    )
    stdout, stderr = sys.stdout, sys.stderr
    perf = time.perf_counter
    while True:
        frame = protocol.read_frame(channel.reader)  # type: ignore[arg-type]
        if frame is None:
            os._exit(0)  # the worker closed the environment
        _kind, meta, payload = frame
        rid = meta["id"]
        try:
            event = json.loads(payload) if payload else {}
        except (ValueError, RecursionError) as exc:
            channel.send(
                protocol.INVALID, {"message": f"Could not parse request body into json: {exc}"}
            )
            continue
        channel.request_id = rid
        ctx = LambdaContext(
            request_id=rid,
            deadline=meta["deadline"],
            invoked_function_arn=meta["arn"],
            client_context=meta.get("client_context"),
            **base,
        )
        if "trace" in meta:
            os.environ["_X_AMZN_TRACE_ID"] = meta["trace"]
        t0 = perf()
        kind = protocol.RESULT
        try:
            # a generator or a (event, response_stream, context) handler streams
            result = streaming.run(handler, event, ctx, channel, bool(meta.get("stream")))
        except SystemExit as exc:
            stdout.flush()
            stderr.flush()
            os._exit(exc.code if isinstance(exc.code, int) else 1)
        except MemoryError:
            # only reached where memory is limited by RLIMIT_AS rather than a cgroup
            os._exit(137)
        except Exception as exc:
            duration = (perf() - t0) * 1000
            kind = protocol.ERROR
            err = error_body(exc, request_id=rid)
            log_error(channel, settings, err)
            body = json.dumps(err).encode()
        else:
            duration = (perf() - t0) * 1000
            body, kind = streaming.finished(result) or _encode_result(result, rid)
        stdout.flush()
        stderr.flush()
        channel.request_id = ""
        channel.send(
            kind,
            {
                "duration_ms": duration,
                "max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            },
            body,
        )
