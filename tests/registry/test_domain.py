"""Pure rules: USCC check digits, contact formats, profile completeness, placing the Ministry list."""

from __future__ import annotations

import pytest

from services.registry import domain, reference
from services.registry.domain import InstitutionRow, RegionIndex, Scope
from tests.registry.factories import corrupt_check_digit, full_profile, uscc

# Published codes (GB 32100-2015's own example and well-known organisations).
VALID_USCC = ["91350100M000100Y43", "914403001922038216", "9144030071526726XG", "91110000802100433B"]
INVALID_USCC = [
    "91350100M000100Y44",  # wrong check digit
    "91350100M000100Y4",  # 17 characters
    "91350100M000100Y431",  # 19 characters
    "91350100I000100Y43",  # I is not in the character set
    "9135010OM000100Y43",  # O in the division code
    "91350100m000100y43",  # lower case
    "",
]


@pytest.mark.parametrize("code", VALID_USCC)
def test_valid_uscc(code: str) -> None:
    assert domain.is_valid_uscc(code)


@pytest.mark.parametrize("code", INVALID_USCC)
def test_invalid_uscc(code: str) -> None:
    assert not domain.is_valid_uscc(code)


def test_every_wrong_check_digit_is_refused() -> None:
    code = uscc(42)
    assert domain.is_valid_uscc(code)
    for ch in domain.USCC_CHARSET:
        if ch != code[-1]:
            assert not domain.is_valid_uscc(code[:-1] + ch)
    assert not domain.is_valid_uscc(corrupt_check_digit(code))


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("13800000001", True),
        ("19912345678", True),
        ("12800000001", False),
        ("1380000000", False),
        ("+8613800000001", False),
        ("1380000000a", False),
    ],
)
def test_mainland_mobile(value: str, ok: bool) -> None:
    assert domain.is_valid_mobile(value) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("office@gxcme.edu.cn", True),
        ("a.b+c@x.org", True),
        ("office@", False),
        ("no-at.example.com", False),
        ("a@b", False),
    ],
)
def test_email(value: str, ok: bool) -> None:
    assert domain.is_valid_email(value) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("https://www.gxcme.edu.cn", True),
        ("http://www.bgy.edu.cn/zs/index.html", True),
        ("www.gxcme.edu.cn", False),
        ("ftp://files.example.cn", False),
        ("https://localhost", False),
        ("https://user:pw@example.cn", False),
        ("https://exa mple.cn", False),
        ("javascript:alert(1)", False),
    ],
)
def test_url(value: str, ok: bool) -> None:
    assert domain.is_valid_url(value) is ok


def test_profile_complete_only_when_every_field_valid() -> None:
    assert domain.profile_completed(full_profile())
    assert not domain.profile_completed(full_profile(address=""))
    assert not domain.profile_completed(full_profile(district_code=None))
    assert not domain.profile_completed(full_profile(uscc=corrupt_check_digit(uscc(1))))
    assert not domain.profile_completed(full_profile(contact_phone="02088888888"))
    assert not domain.profile_completed(full_profile(contact_email="x@"))
    assert not domain.profile_completed(full_profile(website="gxcme"))
    assert set(domain.profile_format_errors(full_profile(uscc="X", website="y"))) == {"uscc", "website"}


def test_scope_covers() -> None:
    assert Scope(anywhere=True).covers("44", "4401")
    assert Scope(province_code="11").covers("11", None)
    assert not Scope(province_code="11").covers("44", "4401")
    assert Scope(province_code="45", city_code="4501").covers("45", "4501")
    assert not Scope(province_code="45", city_code="4501").covers("45", "4502")
    assert not Scope().covers("11", None)


@pytest.fixture(scope="module")
def index() -> RegionIndex:
    return RegionIndex.build(reference.provinces(), reference.cities(), reference.areas())


@pytest.mark.parametrize(
    ("province", "location", "city", "district"),
    [
        ("11", "北京市", "1101", None),
        ("50", "重庆市", "5001", None),
        ("45", "南宁市", "4501", None),
        ("32", "昆山市", "3205", "320583"),  # county-level city → its prefecture
        ("42", "仙桃市", "4290", "429004"),  # directly administered county-level city
        ("62", "临夏州", "6229", None),  # abbreviated autonomous prefecture
    ],
)
def test_place_location(index: RegionIndex, province: str, location: str, city: str, district: str | None) -> None:
    placement = domain.place_location(index, province, location)
    assert placement is not None
    assert (placement.city_code, placement.district_code) == (city, district)


@pytest.mark.parametrize(("province", "location"), [("13", "天津市"), ("54", "咸阳市"), ("45", "火星市")])
def test_unplaceable_location(index: RegionIndex, province: str, location: str) -> None:
    assert domain.place_location(index, province, location) is None


def test_parse_generic_row_reports_each_bad_field() -> None:
    row, errors = domain.parse_generic_row(
        7, {"code": "12345", "name": "", "type": "大学", "province_code": "4", "city_code": "45010"}
    )
    assert row is None
    assert {(e.row, e.field) for e in errors} == {
        (7, "code"),
        (7, "name"),
        (7, "type"),
        (7, "province_code"),
        (7, "city_code"),
    }
    row, errors = domain.parse_generic_row(
        3, {"学校标识码": "4145019999", "学校名称": "南宁某中职学校", "类型": "中职", "province_code": "45"}
    )
    assert errors == [] and row is not None
    assert row.type == "secondary_vocational" and row.city_code is None


def test_merge_register_row_detects_real_changes_only() -> None:
    current = {
        "code": "4145019999",
        "name": "甲校",
        "type": "higher_vocational",
        "province_code": "45",
        "city_code": "4501",
        "district_code": "450103",
        "profile_completed": False,
        "version": 3,
    }
    same = InstitutionRow(1, "4145019999", "甲校", "higher_vocational", "45", None, None)
    assert domain.merge_register_row(current, same) is None
    renamed = domain.merge_register_row(
        current, InstitutionRow(1, "4145019999", "乙校", "higher_vocational", "45", "4501", None)
    )
    assert renamed is not None and renamed["name"] == "乙校" and renamed["version"] == 4
    assert renamed["district_code"] == "450103"  # same city, no district given: kept
    moved = domain.merge_register_row(
        current, InstitutionRow(1, "4145019999", "甲校", "higher_vocational", "45", "4502", None)
    )
    assert moved is not None and moved["city_code"] == "4502" and moved["district_code"] is None


def test_merge_profile_keeps_register_fields_left_empty() -> None:
    current = {"type": "higher_vocational", "province_code": "45", "city_code": "4501", "district_code": "450103"}
    partial = domain.merge_profile(current, {"contact_name": "李老师"})
    assert (partial["type"], partial["city_code"], partial["district_code"]) == ("higher_vocational", "4501", "450103")
    assert partial["contact_name"] == "李老师" and partial["uscc"] is None
    moved = domain.merge_profile(current, {"city_code": "4502"})
    assert (moved["city_code"], moved["district_code"]) == ("4502", None)
    assert domain.merge_profile(current, {"province_code": "11"})["province_code"] == "45"
