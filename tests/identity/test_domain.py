"""Identity's pure rules at their boundaries: send limits, code tries, lock-out, passwords."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.identity import domain
from services.identity.config import IdentitySettings
from services.identity.passwords import HASHER, common_passwords
from shared.auth.principal import Role

NOW = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
LIMITS = domain.SmsLimits()


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def test_resend_interval_refuses_at_59_seconds_and_allows_at_60() -> None:
    refusal = domain.sms_refusal(now=NOW, phone_sends=[ago(59)], ip_sends=[], limits=LIMITS)
    assert refusal == domain.Refusal("resend", 1)
    assert domain.sms_refusal(now=NOW, phone_sends=[ago(60)], ip_sends=[], limits=LIMITS) is None


def test_fifth_send_in_an_hour_allowed_sixth_refused() -> None:
    four = [ago(61 * i + 61) for i in range(4)]
    assert domain.sms_refusal(now=NOW, phone_sends=four, ip_sends=[], limits=LIMITS) is None
    five = [*four, ago(61 * 5 + 61)]
    refusal = domain.sms_refusal(now=NOW, phone_sends=five, ip_sends=[], limits=LIMITS)
    assert refusal is not None and refusal.limit == "phone_hour"
    # it clears when the oldest of the five leaves the hour
    assert refusal.retry_after == 3600 - (61 * 5 + 61)


def test_daily_cap_of_ten() -> None:
    nine = [ago(3 * 3600 + i * 600) for i in range(9)]
    assert domain.sms_refusal(now=NOW, phone_sends=nine, ip_sends=[], limits=LIMITS) is None
    ten = [*nine, ago(20 * 3600)]
    refusal = domain.sms_refusal(now=NOW, phone_sends=ten, ip_sends=[], limits=LIMITS)
    assert refusal == domain.Refusal("phone_day", 4 * 3600)
    # sends older than a day do not count
    assert domain.sms_refusal(now=NOW, phone_sends=[*nine, ago(86_400)], ip_sends=[], limits=LIMITS) is None


def test_twenty_sends_per_address_an_hour() -> None:
    nineteen = [ago(100 + i) for i in range(19)]
    assert domain.sms_refusal(now=NOW, phone_sends=[], ip_sends=nineteen, limits=LIMITS) is None
    refusal = domain.sms_refusal(now=NOW, phone_sends=[], ip_sends=[*nineteen, ago(3000)], limits=LIMITS)
    assert refusal == domain.Refusal("ip_hour", 600)


def test_five_wrong_tries_spend_the_code_even_if_the_sixth_is_right() -> None:
    attempts = 0
    for _ in range(4):
        outcome = domain.check_sms_code(attempts=attempts, max_attempts=5, matches=False)
        assert not outcome.accepted and not outcome.spent
        attempts = outcome.attempts
    fifth = domain.check_sms_code(attempts=attempts, max_attempts=5, matches=False)
    assert fifth == domain.CodeCheck(accepted=False, attempts=5, spent=True)
    sixth = domain.check_sms_code(attempts=5, max_attempts=5, matches=True)
    assert not sixth.accepted and sixth.attempts == 5


def test_fifth_try_may_still_be_right() -> None:
    assert domain.check_sms_code(attempts=4, max_attempts=5, matches=True).accepted


def test_progressive_lock_out() -> None:
    policy = domain.LockPolicy()
    assert [domain.lock_seconds(n, policy) for n in (1, 4, 5, 6, 7)] == [0, 0, 60, 120, 240]
    assert domain.lock_seconds(40, policy) == 3600


@pytest.mark.parametrize(
    ("password", "ok"),
    [("a" * 7 + "Z", True), ("x7#kq9", False), ("q" * 7, False), ("k" * 128, True), ("k" * 129, False)],
)
def test_password_length_bounds(password: str, ok: bool) -> None:
    assert (domain.password_problem(password, frozenset()) is None) is ok


def test_common_passwords_are_refused_case_insensitively() -> None:
    common = common_passwords()
    assert len(common) >= 10_000
    assert "password" in common and "12345678" in common
    assert domain.password_problem("PassWord", common) is not None
    assert domain.password_problem("Qwertyuiop", common) is not None
    assert domain.password_problem("Demo#2026", common) is None


def test_generated_secrets() -> None:
    password = domain.generate_password(common_passwords())
    assert len(password) == 10 and set(password) <= set(domain.PASSWORD_ALPHABET)
    code = domain.generate_sms_code()
    assert len(code) == 6 and code.isdigit()
    assert len({domain.generate_sms_code() for _ in range(50)}) > 40


def test_captcha_digest_ignores_case_and_binds_the_id() -> None:
    key = b"k"
    assert domain.captcha_digest(key, "id1", "aBc7") == domain.captcha_digest(key, "id1", "ABC7 ")
    assert domain.captcha_digest(key, "id1", "abc7") != domain.captcha_digest(key, "id2", "abc7")


def test_sms_digest_binds_phone_and_purpose() -> None:
    key = b"k"
    base = domain.sms_code_digest(key, "13900000000", "register", "123456")
    assert base != domain.sms_code_digest(key, "13900000001", "register", "123456")
    assert base != domain.sms_code_digest(key, "13900000000", "reset_password", "123456")


def test_argon2id_parameters() -> None:
    stored = HASHER.hash("x")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_default_limits_match_the_rules() -> None:
    s = IdentitySettings()
    assert (s.sms_code_ttl_seconds, s.sms_code_max_attempts, s.sms_resend_seconds) == (300, 5, 60)
    assert (s.sms_per_phone_hour, s.sms_per_phone_day, s.sms_per_ip_hour) == (5, 10, 20)
    assert (s.captcha_ttl_seconds, s.login_lock_threshold, s.login_failures_per_ip_hour) == (120, 5, 100)
    assert s.access_ttl_seconds <= 900


def test_scope_of_department_accounts() -> None:
    assert domain.scope_problem(Role.provincial, province_code=None, city_code=None, org_id=None) is not None
    assert domain.scope_problem(Role.provincial, province_code="45", city_code=None, org_id=None) is None
    assert domain.scope_problem(Role.municipal, province_code="45", city_code="1101", org_id=None) is not None
    assert domain.scope_problem(Role.municipal, province_code="45", city_code="4501", org_id=None) is None
    assert domain.scope_problem(Role.org, province_code=None, city_code=None, org_id=None) is not None


def test_sub_account_names_take_the_first_free_number() -> None:
    taken = {"4145010867", "4145010867-01", "4145010867-03"}
    assert domain.sub_account_name("4145010867", taken) == "4145010867-02"


def test_mask_phone() -> None:
    assert domain.mask_phone("13812345678") == "138****5678"
