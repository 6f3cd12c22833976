"""The router: resolves a qualifier, admits the request against the concurrency pools,
picks or starts an environment, and forwards. gRPC (`klambda.v1.Invoker`) and Lambda's
REST API (aiohttp) both call the one invoke path in `invoke`.
"""
