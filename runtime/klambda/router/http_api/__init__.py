"""Lambda's REST API on aiohttp, so boto3 and the AWS CLI work with `--endpoint-url`.

One module per sub-API, each a class that adds its routes:

    invoke     Invoke (`/2015-03-31/functions/{name}/invocations`)
    control    functions, versions, aliases, concurrency, provisioned, account settings
    queues     dead letters and destination queues of asynchronous invocation
    reports    klambda's own: usage and cost, log lines
    health     `/metrics`, `/healthz`

`app` assembles them behind the one error middleware. Handlers parse, call the router's
core, and shape Lambda's response (`shapes`); nothing else.
"""

from klambda.router.http_api.app import HttpApi

__all__ = ["HttpApi"]
