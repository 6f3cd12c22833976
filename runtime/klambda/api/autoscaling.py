"""Provisioned concurrency autoscaling: what Application Auto Scaling keeps for an alias or a
version of a Lambda function (a scalable target's min and max, a target tracking policy on
`LambdaProvisionedConcurrencyUtilization`, scheduled actions), as `provisionedAutoscaling`
on an Alias or a Version.

Scheduled actions take the EventBridge grammar the schedules use (`cron(...)`,
`rate(...)`, klambda.triggers.schedule); when one fires, its min and max bound the target
from then on, until another fires.
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from klambda.api.meta import Model
from klambda.triggers import schedule

# Application Auto Scaling's bounds for LambdaProvisionedConcurrencyUtilization
TARGET_MIN, TARGET_MAX = 0.1, 0.9


class ScheduledAction(Model):
    name: str = Field(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9._-]+$")
    schedule: str = Field(description="cron(...) or rate(...), as EventBridge writes them")
    timezone: str | None = None
    min_capacity: int | None = Field(default=None, ge=0, alias="minCapacity")
    max_capacity: int | None = Field(default=None, ge=1, alias="maxCapacity")

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, text: str) -> str:
        schedule.parse(text)  # ValueError says what is wrong
        return text

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, name: str | None) -> str | None:
        if name is not None:
            schedule.time_zone(name)
        return name

    @model_validator(mode="after")
    def _bounds(self) -> ScheduledAction:
        if self.min_capacity is None and self.max_capacity is None:
            raise ValueError(f"{self.name}: give minCapacity, maxCapacity or both")
        if (
            self.min_capacity is not None
            and self.max_capacity is not None
            and self.min_capacity > self.max_capacity
        ):
            raise ValueError(
                f"{self.name}: minCapacity {self.min_capacity} is above maxCapacity "
                f"{self.max_capacity}"
            )
        return self


class ProvisionedAutoscaling(Model):
    min_capacity: int = Field(ge=0, alias="minCapacity")
    max_capacity: int = Field(ge=1, alias="maxCapacity")
    target_utilization: float = Field(
        default=0.7, ge=TARGET_MIN, le=TARGET_MAX, alias="targetUtilization"
    )
    scale_out_cooldown_seconds: float = Field(default=0.0, ge=0, alias="scaleOutCooldownSeconds")
    scale_in_cooldown_seconds: float = Field(default=300.0, ge=0, alias="scaleInCooldownSeconds")
    scheduled_actions: list[ScheduledAction] = Field(
        default_factory=list, alias="scheduledActions", max_length=50
    )

    @model_validator(mode="after")
    def _bounds(self) -> ProvisionedAutoscaling:
        if self.min_capacity > self.max_capacity:
            raise ValueError(
                f"minCapacity {self.min_capacity} is above maxCapacity {self.max_capacity}"
            )
        names = [a.name for a in self.scheduled_actions]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"scheduledActions: names must differ, {sorted(dup)} repeated")
        return self
