"""Events published by applications: each carries the application's state after the change."""

from __future__ import annotations

from datetime import datetime

from shared.contracts.envelope import Event, EventData


class ApplicationData(EventData):
    id: str
    plan_id: str
    year: int
    institution_code: str
    institution_name: str | None = None
    province_code: str
    city_code: str | None = None
    certificate_id: str
    certificate_name: str
    level: str
    status: str  # draft | pending | approved | rejected
    review_stage: str | None = None  # municipal | provincial
    trainees_total: int | None = None
    approved_trainees: int | None = None
    returned_reason: str | None = None
    plan_closes_at: datetime | None = None
    version: int


class ReviewData(ApplicationData):
    stage: str  # municipal | provincial
    decision: str  # approve | reject | return
    comment: str | None = None
    reviewer: str


class ApplicationCreated(Event[ApplicationData]):
    TYPE = "applications.application.created"
    VERSION = 1


class ApplicationUpdated(Event[ApplicationData]):
    TYPE = "applications.application.updated"
    VERSION = 1


class ApplicationDeleted(Event[ApplicationData]):
    TYPE = "applications.application.deleted"
    VERSION = 1


class ApplicationSubmitted(Event[ApplicationData]):
    TYPE = "applications.application.submitted"
    VERSION = 1


class ApplicationReviewed(Event[ReviewData]):
    """Every decision, at either stage."""

    TYPE = "applications.application.reviewed"
    VERSION = 1


class ApplicationApproved(Event[ReviewData]):
    """Final approval by the province."""

    TYPE = "applications.application.approved"
    VERSION = 1


class ApplicationRejected(Event[ReviewData]):
    TYPE = "applications.application.rejected"
    VERSION = 1


class ApplicationReturned(Event[ReviewData]):
    """Returned for modification: editable again until the plan closes."""

    TYPE = "applications.application.returned"
    VERSION = 1


class PilotGrantedData(EventData):
    institution_code: str
    institution_name: str | None = None
    province_code: str
    city_code: str | None = None
    year: int
    application_id: str


class PilotGranted(Event[PilotGrantedData]):
    """An institution's first approval of a year: it is a pilot institution of that year."""

    TYPE = "applications.pilot.granted"
    VERSION = 1
