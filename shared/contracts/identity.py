"""Events published by identity."""

from __future__ import annotations

from typing import ClassVar, Literal

from shared.contracts.envelope import Event, EventData


class SmsCodeRequestedData(EventData):
    SECRET_FIELDS: ClassVar[frozenset[str]] = frozenset({"code"})
    phone: str
    purpose: Literal["register", "reset_password"]
    code: str
    ttl_seconds: int


class SmsCodeRequested(Event[SmsCodeRequestedData]):
    """A verification code to send; `subject` is the code's id. Notify sends it and keeps it masked."""

    TYPE = "identity.sms_code.requested"
    VERSION = 1


class AccountData(EventData):
    account_id: str
    account: str
    role: str
    phone: str
    name: str | None = None
    primary: bool = False
    institution_code: str | None = None
    institution_name: str | None = None
    province_code: str | None = None
    city_code: str | None = None
    org_id: str | None = None


class AccountRegisteredData(AccountData):
    SECRET_FIELDS: ClassVar[frozenset[str]] = frozenset({"password"})
    password: str


class AccountRegistered(Event[AccountRegisteredData]):
    """A school registered its primary account; `password` is sent once by SMS, then masked."""

    TYPE = "identity.account.registered"
    VERSION = 1


class AccountCreated(Event[AccountData]):
    """A sub-account, department, organisation or operator account was created."""

    TYPE = "identity.account.created"
    VERSION = 1


class AccountRemoved(Event[AccountData]):
    """A school's primary account deleted one of its sub-accounts."""

    TYPE = "identity.account.removed"
    VERSION = 1


class PasswordResetData(EventData):
    SECRET_FIELDS: ClassVar[frozenset[str]] = frozenset({"new_password"})
    account_id: str
    account: str
    phone: str
    institution_code: str | None = None
    #: set when a department or the operator reset a school's password: notify sends it by SMS once.
    new_password: str | None = None


class PasswordReset(Event[PasswordResetData]):
    """A password was reset: by SMS code (no `new_password`) or by a department for a school."""

    TYPE = "identity.password.reset"
    VERSION = 1
