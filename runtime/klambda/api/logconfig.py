"""How a function's logs are written and kept: Lambda's `LoggingConfig`, the log group's
retention, and its metric filters.

`loggingConfig` is Lambda's advanced logging controls: `logFormat` Text (the START/END/
REPORT lines) or JSON (Lambda's structured records), and, with JSON only, the levels below
which application records (`applicationLogLevel`) and platform records (`systemLogLevel`)
are dropped before they reach the log stream. `logRetentionInDays` is CloudWatch's
retention of the function's log group, with CloudWatch's allowed values; unset keeps the
records for ever. `metricFilters` are CloudWatch's metric filters on the function's log
group: a filter pattern, and the metric each matching record adds to (Prometheus counters,
klambda.logstore.metricfilters). The patterns are checked here with their parser
(klambda.logs, which imports nothing of klambda), so a bad one is refused with the manifest.
The CRD in `crds/functions.yaml` states the same bounds (a test checks).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from klambda.api.meta import Model
from klambda.logs.filterpattern import PatternError, compile_pattern, metric_value

LOG_FORMATS = ("Text", "JSON")
APPLICATION_LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
SYSTEM_LOG_LEVELS = ("DEBUG", "INFO", "WARN")
# Lambda's default for both levels once the format is JSON.
DEFAULT_LOG_LEVEL = "INFO"
# CloudWatch Logs' PutRetentionPolicy accepts these numbers of days, and no others.
RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192,
    2557, 2922, 3288, 3653,
)  # fmt: skip

# CloudWatch's bounds on a metric filter
METRIC_FILTERS_MAX = 100
FILTER_NAME_PATTERN = r"^[^:*]{1,512}$"
METRIC_NAME_PATTERN = r"^[^:*$]{1,255}$"
FILTER_PATTERN_MAX = 1024

LogFormat = Literal["Text", "JSON"]
ApplicationLogLevel = Literal["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]
SystemLogLevel = Literal["DEBUG", "INFO", "WARN"]


class LoggingConfig(Model):
    """Lambda's LoggingConfig (without LogGroup: a function's group is its own name)."""

    log_format: LogFormat = Field(default="Text", alias="logFormat")
    application_log_level: ApplicationLogLevel | None = Field(
        default=None, alias="applicationLogLevel"
    )
    system_log_level: SystemLogLevel | None = Field(default=None, alias="systemLogLevel")

    @model_validator(mode="after")
    def _levels_need_json(self) -> LoggingConfig:
        if self.log_format != "JSON":
            given = [
                name
                for name, value in (
                    ("applicationLogLevel", self.application_log_level),
                    ("systemLogLevel", self.system_log_level),
                )
                if value is not None
            ]
            if given:
                raise ValueError(
                    f"{' and '.join(given)} need logFormat JSON: Lambda filters levels of "
                    "JSON logs only"
                )
        return self

    @property
    def is_json(self) -> bool:
        return self.log_format == "JSON"

    @property
    def application_level(self) -> str | None:
        """The effective application level: None (no filtering) in Text format."""
        return (self.application_log_level or DEFAULT_LOG_LEVEL) if self.is_json else None

    @property
    def system_level(self) -> str | None:
        """The effective system level: None (every platform line) in Text format."""
        return (self.system_log_level or DEFAULT_LOG_LEVEL) if self.is_json else None


def check_retention(days: int | None) -> int | None:
    if days is not None and days not in RETENTION_DAYS:
        raise ValueError(
            f"{days} is not a retention CloudWatch Logs allows: one of "
            + ", ".join(map(str, RETENTION_DAYS))
        )
    return days


class MetricFilter(Model):
    """A CloudWatch metric filter: records matching `filterPattern` add `metricValue` (a
    number, `$field` of a space-delimited pattern or `$.path` of a JSON one) to the metric
    `metricName`; with `defaultValue`, every record that does not match adds that."""

    name: str = Field(pattern=FILTER_NAME_PATTERN)
    filter_pattern: str = Field(alias="filterPattern", max_length=FILTER_PATTERN_MAX)
    metric_name: str = Field(alias="metricName", pattern=METRIC_NAME_PATTERN)
    metric_value: str = Field(default="1", alias="metricValue", max_length=256)
    default_value: float | None = Field(default=None, alias="defaultValue")

    @field_validator("filter_pattern")
    @classmethod
    def _pattern(cls, text: str) -> str:
        try:
            compile_pattern(text)
        except PatternError as err:
            raise ValueError(str(err)) from None
        return text

    @field_validator("metric_value")
    @classmethod
    def _value(cls, text: str) -> str:
        return metric_value(text)


def check_metric_filters(filters: list[MetricFilter]) -> list[MetricFilter]:
    if len(filters) > METRIC_FILTERS_MAX:
        raise ValueError(
            f"{len(filters)} metric filters, more than CloudWatch's {METRIC_FILTERS_MAX}"
        )
    names = [f.name for f in filters]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"metric filter names must be unique: {', '.join(dupes)}")
    return filters
