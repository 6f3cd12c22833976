"""Triggers' pure core: what AWS's pushed event sources say and send, with no I/O.

    schedule      EventBridge's `rate(...)` and six-field `cron(...)`: parsing, ticks
    eventbridge   the Scheduled Event a schedule delivers
    httpapi       API Gateway HTTP API routes, request events (payload 2.0 and 1.0) and
                  the mapping of a function's result to an HTTP response
    functionurl   a function URL's request event
    sns           SNS's notification record (`Records[].Sns`) and message attributes
    filterpolicy  SNS subscription filter policies: checked when declared, matched on publish
    eventstream   AWS's event stream framing (InvokeWithResponseStream)

The router's trigger components (scheduler, HTTP gateway, topics) parse their input with
these, decide with these, and invoke through the one invoke path. Everything here imports
the standard library and small parsing libraries only, nothing else of klambda, so the
resource models (`klambda.api`) can validate a manifest with the same grammar the router
runs.
"""
