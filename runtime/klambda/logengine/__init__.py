"""The cluster's log engine: VictoriaLogs, fed by the worker pods, queried by the router.

Local mode keeps its records in DuckDB (klambda.logstore), embedded in the router; a cluster
has many worker pods and routers, so its records go to a log engine that runs beside them
and scales past one machine. VictoriaLogs, because it is one static binary under
Apache-2.0, takes JSON Lines as klambda writes them (`/insert/jsonline`), keeps streams
(group = function, stream = environment) as its own notion, has a retention flag, and its
query language (LogsQL) has pipes for what Insights asks (`filter`, `stats ... by
(_time:5m)`, `quantile`, `count_uniq`, `extract_regexp`, `unpack_json`, `math`, `first N
partition by`). OpenSearch would do too, at the price of a JVM and a cluster to tend.

`records` shapes a record for the engine (the discovered fields extracted when shipped),
`logsql` compiles an Insights query (klambda.logs.insights, the one grammar of both modes)
into LogsQL, `client` speaks the engine's HTTP API.
"""
