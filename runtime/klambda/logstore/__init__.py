"""The local log store: Lambda's log records of every function, kept in DuckDB, queried
with Logs Insights' language, expired and archived by retention.

DuckDB rather than SQLite FTS5, because what Insights asks of a store is analytics:
`stats count(*) by bin(5m)`, `pct(@duration, 99)`, `count_distinct`, regular expressions
and `parse` over every record of an hour or a day. DuckDB runs those column by column,
vectorised and on all cores, with RE2 regular expressions, quantiles, distinct counts and
JSON built in; it reads JSON Lines natively, so ingesting the router's log files costs no
Python per record; and a database is one file, embedded, with no server to run. SQLite
FTS5 finds words quickly, but a regular expression or a percentile there is a Python call
per row (about a second per million records before anything else is done), which is the
query Insights users write most. The cost is that one process owns the database: the
router that serves the queries is the one that ingests.

Group = function (`/aws/lambda/<function>`), stream = environment (Lambda's
log_stream_name). Ingestion reads the JSON Lines files `klambda.worker.logs.LogHub`
already writes (STATE/logs), in a thread of its own, in batches: never on the invoke path.
"""

from klambda.logstore.ingest import Ingester
from klambda.logstore.store import LogStore

__all__ = ["Ingester", "LogStore"]
