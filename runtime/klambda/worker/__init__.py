"""The worker: hosts the execution environments of functions.

In a function pod it serves the router over gRPC; in local mode it runs inside the router
process, saving a hop. Either way it starts environments from a zygote (`zygote`), limits
them (`cgroups`), talks to them over a socketpair (`environment`), keeps warm ones for
reuse (`pool`) and writes Lambda's log lines (`logs`).
"""
