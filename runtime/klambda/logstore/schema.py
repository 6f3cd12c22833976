"""The store's tables and the SQL that turns the router's JSON Lines into records.

`events` holds one row per log record, with the fields Logs Insights discovers in Lambda's
logs already extracted at ingest (the rule is klambda.logs.discover; a test checks this
SQL gives the same answers record by record), so that a query over a million records reads
columns instead of parsing text. `ingested` remembers how far each log file was read; a
row there and the records it covers are written in one transaction.
"""

from __future__ import annotations

VERSION = 1

DDL = [
    """
    CREATE TABLE IF NOT EXISTS events (
        ts TIMESTAMP NOT NULL,            -- UTC, microseconds
        function VARCHAR NOT NULL,        -- the log group is /aws/lambda/<function>
        stream VARCHAR NOT NULL,          -- the environment's log stream
        request_id VARCHAR,
        type VARCHAR,                     -- START END REPORT INIT_START platform.*
        level VARCHAR,                    -- an application record's level
        message VARCHAR NOT NULL,
        duration DOUBLE,
        billed_duration DOUBLE,
        memory_size DOUBLE,
        max_memory_used DOUBLE,
        init_duration DOUBLE,
        ingestion_time TIMESTAMP NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS ingested (
        device UBIGINT NOT NULL,
        inode UBIGINT NOT NULL,
        head VARCHAR NOT NULL,            -- the file's first line, so a reused inode is new
        file VARCHAR NOT NULL,
        "offset" UBIGINT NOT NULL,
        PRIMARY KEY (device, inode)
    )
    """,
    "CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)",
]

# Lambda's REPORT line, every field after Duration optional (klambda.logs.discover.REPORT)
REPORT = (
    r"^REPORT RequestId: (\S+)\tDuration: ([0-9.]+) ms(?:\tBilled Duration: ([0-9.]+) ms)?"
    r"(?:\tMemory Size: ([0-9]+) MB)?(?:\tMax Memory Used: ([0-9]+) MB)?"
    r"(?:\tInit Duration: ([0-9.]+) ms)?"
)
REPORT_GROUPS = "['rid', 'd', 'b', 'mem', 'used', 'init']"
APPLICATION = r"^\[([A-Z]+)\]\t[^\t]*\t([^\t]*)\t"


def _metric(name: str) -> str:
    path = f"'$.record.metrics.{name}'"
    return (
        f"CASE WHEN platform = 'platform.report' AND json_type(j, {path}) "
        f"IN ('DOUBLE', 'UBIGINT', 'BIGINT') THEN json_extract(j, {path})::DOUBLE END"
    )


def _report(group: str) -> str:
    return f"CASE WHEN report IS NOT NULL THEN TRY_CAST(nullif(report.{group}, '') AS DOUBLE) END"


# Parameters: $path (a JSON Lines file), $function. The innermost SELECT reads the file,
# the next one parses the message once (JSON, REPORT, application prefix), the outer one
# picks each field from whichever form the record has.
INGEST = f"""
INSERT INTO events
SELECT
    ts, $function, stream, coalesce(rid, found_rid), kind, level, m,
    coalesce({_metric("durationMs")}, {_report("d")}),
    coalesce({_metric("billedDurationMs")}, {_report("b")}),
    coalesce({_metric("memorySizeMB")}, {_report("mem")}),
    coalesce({_metric("maxMemoryUsedMB")}, {_report("used")}),
    coalesce({_metric("initDurationMs")}, {_report("init")}),
    now()::TIMESTAMP
FROM (
    SELECT *,
        CASE
            WHEN platform IS NOT NULL THEN platform
            WHEN j IS NOT NULL THEN NULL
            WHEN report IS NOT NULL THEN 'REPORT'
            WHEN regexp_matches(m, '^START RequestId: \\S') THEN 'START'
            WHEN regexp_matches(m, '^END RequestId: \\S') THEN 'END'
            WHEN starts_with(m, 'INIT_START ') THEN 'INIT_START'
        END AS kind,
        CASE
            WHEN platform IS NOT NULL THEN
                CASE WHEN json_type(j, '$.record.requestId') = 'VARCHAR'
                THEN json_extract_string(j, '$.record.requestId') END
            WHEN j IS NOT NULL THEN
                CASE WHEN json_type(j, '$.requestId') = 'VARCHAR'
                THEN nullif(json_extract_string(j, '$.requestId'), '') END
            WHEN report IS NOT NULL THEN report.rid
            WHEN regexp_matches(m, '^(START|END) RequestId: \\S') THEN
                regexp_extract(m, '^(?:START|END) RequestId: (\\S+)', 1)
            ELSE nullif(regexp_extract(m, '{APPLICATION}', 2), '')
        END AS found_rid,
        CASE
            WHEN platform IS NOT NULL THEN NULL
            WHEN j IS NOT NULL THEN
                CASE WHEN json_type(j, '$.level') = 'VARCHAR'
                THEN upper(json_extract_string(j, '$.level')) END
            ELSE nullif(regexp_extract(m, '{APPLICATION}', 1), '')
        END AS level
    FROM (
        SELECT *,
            CASE WHEN json_extract_string(j, '$.type') LIKE 'platform.%'
                AND json_type(j, '$.record') = 'OBJECT'
            THEN json_extract_string(j, '$.type') END AS platform,
            CASE WHEN j IS NULL AND starts_with(m, 'REPORT ')
                AND regexp_matches(m, '{REPORT}')
            THEN regexp_extract(m, '{REPORT}', {REPORT_GROUPS}) END AS report
        FROM (
            SELECT
                make_timestamp(CAST(round(t * 1000000) AS BIGINT)) AS ts,
                s AS stream,
                nullif(r, '') AS rid,
                m,
                CASE WHEN starts_with(m, '{{') AND json_valid(m) THEN
                    CASE WHEN json_type(m) = 'OBJECT' THEN m::JSON END
                END AS j
            FROM read_json($path, format = 'newline_delimited',
                columns = {{t: 'DOUBLE', s: 'VARCHAR', r: 'VARCHAR', m: 'VARCHAR'}})
        )
    )
)
"""
