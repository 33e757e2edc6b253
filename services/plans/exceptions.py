"""Domain errors of the plans service; the router maps each to a problem code."""

from __future__ import annotations


class PlansError(Exception):
    code = "plans_error"


class PlanNotFound(PlansError):
    """Absent, or outside the caller's scope: both answer 404 so nothing leaks."""

    code = "not_found"


class DuplicateBatch(PlansError):
    """The province already has a plan with this year and batch."""

    code = "duplicate_batch"


class PlanRuleViolation(PlansError):
    """A plan rule was broken; `code` is stable, `field` names the offending input when there is one."""

    def __init__(self, code: str, field: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.field = field
