"""How a function's logs are written and kept: Lambda's `LoggingConfig` and the log group's
retention.

`loggingConfig` is Lambda's advanced logging controls: `logFormat` Text (the START/END/
REPORT lines) or JSON (Lambda's structured records), and, with JSON only, the levels below
which application records (`applicationLogLevel`) and platform records (`systemLogLevel`)
are dropped before they reach the log stream. `logRetentionInDays` is CloudWatch's
retention of the function's log group, with CloudWatch's allowed values; unset keeps the
records for ever. The CRD in `crds/functions.yaml` states the same (a test checks).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from klambda.api.meta import Model

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
