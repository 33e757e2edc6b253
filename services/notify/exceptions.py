"""Domain errors of the notify service; the router maps each to a problem code."""

from __future__ import annotations


class NotifyError(Exception):
    code = "notify_error"


class SmsIntentError(NotifyError):
    """An SMS intent could not be stored; the message says why without the SMS text."""

    code = "sms_intent_failed"


class SmsNotFound(NotifyError):
    code = "not_found"


class SmsNotResendable(NotifyError):
    """Only a failed message without a secret can be sent again."""

    code = "invalid_transition"
