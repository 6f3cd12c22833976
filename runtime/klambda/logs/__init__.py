"""Lambda's logs as data: levels, the platform's record shapes, the fields Logs Insights
discovers, the Insights query language and CloudWatch's filter patterns.

Pure: nothing here reads a file, opens a socket or knows where records are kept; the store
(`klambda.logstore`) and the router apply it. It imports nothing else of klambda, so the
resource models may check a filter pattern and the tests need no process.
"""
