"""The router's HTTP application: every sub-API's routes, Lambda's error shapes, the body limit.

Handlers raise `KlambdaError`s; the one middleware here turns them into Lambda's error
responses (status, `x-amzn-ErrorType`, JSON body), so boto3 raises what Lambda would.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware
from aiohttp.web_protocol import RequestPayloadError

from klambda.api import limits
from klambda.errors import InvalidRequestContent, KlambdaError, RequestTooLarge
from klambda.logengine.client import LogEngine
from klambda.logstore import LogStore
from klambda.router import permissions
from klambda.router.access import Access
from klambda.router.access import Request as AccessRequest
from klambda.router.autoscaler import Autoscaler
from klambda.router.cluster_functions import ClusterFunctions
from klambda.router.control import LocalControl
from klambda.router.functions import LocalFunctions
from klambda.router.history import Sampler
from klambda.router.http_api.autoscaling import AutoscalingApi
from klambda.router.http_api.cluster_functions import ClusterFunctionsApi
from klambda.router.http_api.console import ConsoleApi
from klambda.router.http_api.control import ControlApi
from klambda.router.http_api.functions import FunctionsApi
from klambda.router.http_api.gateway import Gateway
from klambda.router.http_api.health import HealthApi
from klambda.router.http_api.invoke import InvokeApi
from klambda.router.http_api.logs import LogsApi
from klambda.router.http_api.queues import QueueApi
from klambda.router.http_api.reports import ReportApi
from klambda.router.http_api.streaming import StreamingApi
from klambda.router.http_api.topics import TopicApi
from klambda.router.http_api.triggers import TriggerApi
from klambda.router.invoke import Invoker
from klambda.router.scheduler import Scheduler
from klambda.router.topics import Topics
from klambda.router.triggers import Triggers
from klambda.trigger_metrics import TriggerMetrics

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(err: KlambdaError) -> web.Response:
    return web.json_response(
        err.body(), status=err.http_status, headers={"x-amzn-ErrorType": err.code}
    )


class UnknownOperation(KlambdaError):
    """A path or method of Lambda's API (or none) that this router does not serve."""

    code = "UnknownOperationException"
    http_status = 404


@web.middleware
async def lambda_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except KlambdaError as err:
        return error_response(err)
    except web.HTTPRequestEntityTooLarge:
        return error_response(
            RequestTooLarge(
                f"Request must be smaller than {limits.SYNC_PAYLOAD_MAX_BYTES} bytes for the "
                "InvokeFunction operation"
            )
        )
    except RequestPayloadError as err:  # a body that cannot be read: bad gzip, say
        reason = str(err).replace("\n", " ").strip()
        return error_response(InvalidRequestContent(f"Could not read the request body: {reason}"))
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed):
        # aiohttp's own answer is plain text, which no AWS SDK can read as an error
        return error_response(
            UnknownOperation(f"{request.method} {request.path}: not an operation klambda serves")
        )


def access_check(access: Access) -> Middleware:
    """Authenticate and authorize every request but /healthz and /metrics."""

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        perm = permissions.required(request.method, request.path, request.query)
        if perm is not None:
            body = await request.read() if request.can_read_body else b""  # kept for the handler
            url = f"{request.scheme}://{request.host}{request.raw_path}"
            who = await access.authenticate(
                AccessRequest(request.method, url, dict(request.headers), body)
            )
            await access.authorize(who, perm)
        return await handler(request)

    return check


class HttpApi:
    def __init__(
        self,
        invoker: Invoker,
        control: LocalControl | None = None,
        triggers: Triggers | None = None,
        scheduler: Scheduler | None = None,
        trigger_metrics: TriggerMetrics | None = None,
        topics: Topics | None = None,
        logstore: LogStore | None = None,
        sampler: Sampler | None = None,
        autoscaler: Autoscaler | None = None,
        cluster_functions: ClusterFunctions | None = None,
        logengine: LogEngine | None = None,
        access: Access | None = None,
    ) -> None:
        self.invoker = invoker
        self.control = control
        # triggers: their state, the HTTP API's routes, function URLs, topics
        self.triggers = triggers or Triggers()
        self.scheduler = scheduler
        self.trigger_metrics = trigger_metrics or TriggerMetrics()
        self.topics = topics
        self.logstore = logstore
        self.sampler = sampler
        self.autoscaler = autoscaler
        self.cluster_functions = cluster_functions
        self.logengine = logengine
        self.access = access

    def app(self) -> web.Application:
        middlewares: list[Middleware] = [lambda_errors]
        if self.access is not None:
            middlewares.append(access_check(self.access))
        app = web.Application(
            middlewares=middlewares,
            client_max_size=limits.SYNC_PAYLOAD_MAX_BYTES + 64 * 1024,
        )
        InvokeApi(self.invoker).add_routes(app.router)
        functions = LocalFunctions(self.control) if self.control is not None else None
        ControlApi(self.invoker, self.control, functions).add_routes(app.router)
        if functions is not None:
            FunctionsApi(self.invoker, functions).add_routes(app.router)
        elif self.cluster_functions is not None:
            ClusterFunctionsApi(self.cluster_functions).add_routes(app.router)
        QueueApi(self.invoker).add_routes(app.router)
        ReportApi(self.invoker).add_routes(app.router)
        LogsApi(self.invoker, self.logstore, self.logengine).add_routes(app.router)
        HealthApi(self.invoker).add_routes(app.router)
        TriggerApi(self.triggers, self.scheduler).add_routes(app.router)
        StreamingApi(self.invoker).add_routes(app.router)
        if self.sampler is not None:
            ConsoleApi(self.invoker, self.sampler, self.autoscaler).add_routes(app.router)
        if self.autoscaler is not None:
            AutoscalingApi(self.autoscaler, self.control).add_routes(app.router)
        if self.topics is not None:
            TopicApi(self.topics).add_routes(app.router)
        Gateway(
            self.invoker,
            self.triggers,
            self.trigger_metrics,
            self.invoker.settings.account_id,
            self.access,
        ).add_routes(app.router)
        return app
