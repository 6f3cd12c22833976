"""The router's HTTP application: every sub-API's routes, Lambda's error shapes, the body limit.

Handlers raise `KlambdaError`s; the one middleware here turns them into Lambda's error
responses (status, `x-amzn-ErrorType`, JSON body), so boto3 raises what Lambda would.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from klambda.api import limits
from klambda.errors import KlambdaError, RequestTooLarge
from klambda.logengine.client import LogEngine
from klambda.logstore import LogStore
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

    def app(self) -> web.Application:
        app = web.Application(
            middlewares=[lambda_errors],
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
            self.invoker, self.triggers, self.trigger_metrics, self.invoker.settings.account_id
        ).add_routes(app.router)
        return app
