"""Pure rules of the registry service: no I/O.

Validation of an institution's base info (USCC per GB 32100-2015, mainland mobile, email, URL),
the completeness of a profile, the scope rules of departments, and the mapping of the Ministry
list's `所在地` onto the region tree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email

INSTITUTION_TYPES = ("undergraduate", "higher_vocational", "secondary_vocational")
CERTIFICATE_LEVELS = ("junior", "intermediate", "senior")
MAJOR_LEVELS = ("secondary", "associate", "bachelor")
MUNICIPALITIES = frozenset({"11", "12", "31", "50"})

TYPE_ALIASES: dict[str, str] = {
    "undergraduate": "undergraduate",
    "本科": "undergraduate",
    "higher_vocational": "higher_vocational",
    "专科": "higher_vocational",
    "高职": "higher_vocational",
    "高职专科": "higher_vocational",
    "secondary_vocational": "secondary_vocational",
    "中职": "secondary_vocational",
}
LEVEL_ALIASES: dict[str, str] = {
    "junior": "junior",
    "初级": "junior",
    "intermediate": "intermediate",
    "中级": "intermediate",
    "senior": "senior",
    "高级": "senior",
}

# GB 32100-2015: 31 characters (no I, O, Z, S, V) and the weights of positions 1..17.
USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_MOBILE = re.compile(r"1[3-9]\d{9}")
_INSTITUTION_CODE = re.compile(r"\d{10}")
_HOSTNAME = re.compile(r"(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{1,62}", re.IGNORECASE)


def uscc_check_char(first17: str) -> str:
    """The 18th character of a unified social credit code whose first 17 are given."""
    total = sum(USCC_CHARSET.index(ch) * w for ch, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_CHARSET[(31 - total % 31) % 31]


def is_valid_uscc(value: str) -> bool:
    """18 characters from the GB 32100-2015 set, the 3rd-8th digits, and a matching check digit."""
    if len(value) != 18 or any(ch not in USCC_CHARSET for ch in value):
        return False
    if not value[2:8].isdigit():
        return False
    return uscc_check_char(value[:17]) == value[17]


def is_valid_mobile(value: str) -> bool:
    """A mainland China mobile number: 11 digits starting 13-19."""
    return bool(_MOBILE.fullmatch(value))


def is_valid_email(value: str) -> bool:
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def is_valid_url(value: str) -> bool:
    """An absolute http(s) URL with a dotted host name (no credentials, no spaces)."""
    if any(ch.isspace() for ch in value):
        return False
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return False
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or parts.username or parts.password or port == 0:
        return False
    return bool(_HOSTNAME.fullmatch(host))


def has_control_chars(value: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in value)


def is_valid_institution_code(value: str) -> bool:
    return bool(_INSTITUTION_CODE.fullmatch(value))


# ---------------------------------------------------------------- profile

PROFILE_FIELDS = (
    "type",
    "uscc",
    "website",
    "province_code",
    "city_code",
    "district_code",
    "address",
    "contact_name",
    "contact_phone",
    "contact_email",
)
PROFILE_FIELD_MESSAGES = {
    "uscc": "统一社会信用代码应为18位，且校验位正确",
    "contact_phone": "请填写11位中国大陆手机号码",
    "contact_email": "电子邮箱格式不正确",
    "website": "网址应以 http:// 或 https:// 开头且格式正确",
    "type": "院校类型只能是本科、高职或中职",
}
_FORMAT_CHECKS = {
    "uscc": is_valid_uscc,
    "contact_phone": is_valid_mobile,
    "contact_email": is_valid_email,
    "website": is_valid_url,
    "type": lambda v: v in INSTITUTION_TYPES,
}


def profile_format_errors(profile: Mapping[str, str | None]) -> dict[str, str]:
    """Field → Chinese message for every given (non-empty) value that is malformed."""
    errors = {}
    for name, check in _FORMAT_CHECKS.items():
        value = profile.get(name)
        if value and not check(value):
            errors[name] = PROFILE_FIELD_MESSAGES[name]
    return errors


def profile_completed(profile: Mapping[str, str | None]) -> bool:
    """True only when every required field is present and well formed."""
    if any(not (profile.get(name) or "").strip() for name in PROFILE_FIELDS):
        return False
    return not profile_format_errors(profile)


def region_chain_errors(
    *, province_code: str | None, city_code: str | None, district_code: str | None, parents: Mapping[str, str | None]
) -> dict[str, str]:
    """Each given code must exist (`parents` maps code → parent code) and sit under the one above."""
    errors: dict[str, str] = {}
    if province_code and (province_code not in parents or parents[province_code] is not None):
        errors["province_code"] = "省份代码不存在"
    if city_code and (city_code not in parents or parents[city_code] != province_code):
        errors["city_code"] = "所选城市不属于该省份"
    if district_code and (district_code not in parents or parents[district_code] != city_code):
        errors["district_code"] = "所选区县不属于该城市"
    return errors


# ---------------------------------------------------------------- scope


@dataclass(frozen=True)
class Scope:
    """Where a caller may act: operator everywhere, a province, or a city of a province."""

    anywhere: bool = False
    province_code: str | None = None
    city_code: str | None = None

    def covers(self, province_code: str | None, city_code: str | None) -> bool:
        if self.anywhere:
            return True
        if self.province_code is None or province_code != self.province_code:
            return False
        return self.city_code is None or city_code == self.city_code


# ---------------------------------------------------------------- region tree and Ministry list


@dataclass
class RegionIndex:
    """Enough of the region tree to place a Ministry `所在地` name."""

    cities: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # province → [(code, name)]
    areas: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)  # province → [(code, name, city)]
    provinces_by_name: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        provinces: Iterable[tuple[str, str]],
        cities: Iterable[tuple[str, str, str]],
        areas: Iterable[tuple[str, str, str, str]],
    ) -> RegionIndex:
        index = cls()
        for code, name in provinces:
            index.provinces_by_name[name] = code
        for code, name, province in cities:
            index.cities.setdefault(province, []).append((code, name))
        for code, name, city, province in areas:
            index.areas.setdefault(province, []).append((code, name, city))
        return index


@dataclass(frozen=True)
class Placement:
    city_code: str | None
    district_code: str | None = None


_SUFFIXES = ("自治州", "地区", "州", "盟", "市")


def _stem(name: str) -> str:
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            return name[: -len(suffix)]
    return name


def place_location(index: RegionIndex, province_code: str, location: str) -> Placement | None:
    """Map a Ministry `所在地` onto (city, district) within the school's province, or None.

    Municipalities are listed by their own name: their one city is `XX01` (市辖区). A county-level
    city is found among the districts and placed in its prefecture (or the `XX90` group of directly
    administered ones). An abbreviated prefecture (临夏州) matches the unique city with its stem.
    """
    location = location.strip()
    if province_code in MUNICIPALITIES:
        province_name = next((n for n, c in index.provinces_by_name.items() if c == province_code), None)
        return Placement(f"{province_code}01") if location == province_name else None
    cities = index.cities.get(province_code, [])
    exact = [code for code, name in cities if name == location]
    if len(exact) == 1:
        return Placement(exact[0])
    areas = [(code, city) for code, name, city in index.areas.get(province_code, []) if name == location]
    if len(areas) == 1:
        return Placement(areas[0][1], areas[0][0])
    stem = _stem(location)
    by_stem = [code for code, name in cities if name.startswith(stem) and name != "市辖区"]
    if len(stem) >= 2 and len(by_stem) == 1:
        return Placement(by_stem[0])
    return None


MINISTRY_COLUMNS = ("学校名称", "学校标识码", "所在地", "办学层次", "省份")


def is_ministry_layout(header: Iterable[str]) -> bool:
    return set(MINISTRY_COLUMNS) <= {h.strip() for h in header}


# ---------------------------------------------------------------- import rows

GENERIC_COLUMNS: dict[str, tuple[str, ...]] = {
    "code": ("code", "学校标识码", "院校代码", "院校识别码"),
    "name": ("name", "学校名称", "院校名称"),
    "type": ("type", "类型", "院校类型", "办学层次"),
    "province_code": ("province_code", "省份代码"),
    "city_code": ("city_code", "城市代码", "地市代码"),
    "district_code": ("district_code", "区县代码"),
}


@dataclass(frozen=True)
class InstitutionRow:
    row: int  # 1-based row number in the file, the header being row 1
    code: str
    name: str
    type: str
    province_code: str
    city_code: str | None
    district_code: str | None


@dataclass(frozen=True)
class RowError:
    row: int
    field: str
    message: str


def _pick(record: Mapping[str, str], aliases: tuple[str, ...]) -> str:
    for alias in aliases:
        value = record.get(alias)
        if value is not None and str(value).strip():
            return str(value).strip()
    return ""


def parse_generic_row(row: int, record: Mapping[str, str]) -> tuple[InstitutionRow | None, list[RowError]]:
    """A row of the generic layout (code, name, type, province_code, city_code[, district_code])."""
    values = {key: _pick(record, aliases) for key, aliases in GENERIC_COLUMNS.items()}
    errors = []
    if not is_valid_institution_code(values["code"]):
        errors.append(RowError(row, "code", "院校代码应为10位数字"))
    if not values["name"] or len(values["name"]) > 100 or has_control_chars(values["name"]):
        errors.append(RowError(row, "name", "院校名称不能为空、不超过100个字符且不含控制字符"))
    institution_type = TYPE_ALIASES.get(values["type"])
    if institution_type is None:
        errors.append(RowError(row, "type", "院校类型只能是本科、高职或中职"))
    if not re.fullmatch(r"\d{2}", values["province_code"]):
        errors.append(RowError(row, "province_code", "省份代码应为2位数字"))
    if values["city_code"] and not re.fullmatch(r"\d{4}", values["city_code"]):
        errors.append(RowError(row, "city_code", "城市代码应为4位数字"))
    if values["district_code"] and not re.fullmatch(r"\d{6}", values["district_code"]):
        errors.append(RowError(row, "district_code", "区县代码应为6位数字"))
    if errors or institution_type is None:
        return None, errors
    return (
        InstitutionRow(
            row=row,
            code=values["code"],
            name=values["name"],
            type=institution_type,
            province_code=values["province_code"],
            city_code=values["city_code"] or None,
            district_code=values["district_code"] or None,
        ),
        [],
    )


def parse_ministry_row(
    row: int, record: Mapping[str, str], index: RegionIndex
) -> tuple[InstitutionRow | None, list[RowError], bool]:
    """A row of the Ministry list; the third value is True when its `所在地` could not be placed."""
    province_code = index.provinces_by_name.get(_pick(record, ("省份",)))
    generic = {
        "code": _pick(record, ("学校标识码",)),
        "name": _pick(record, ("学校名称",)),
        "type": _pick(record, ("办学层次",)),
        "province_code": province_code or "",
    }
    placement = place_location(index, province_code, _pick(record, ("所在地",))) if province_code else None
    if placement is not None:
        generic["city_code"] = placement.city_code or ""
        generic["district_code"] = placement.district_code or ""
    parsed, errors = parse_generic_row(row, generic)
    if province_code is None:
        errors = [*errors, RowError(row, "省份", "省份名称无法识别")]
    return parsed, errors, placement is None


REGISTER_KEYS = ("name", "type", "province_code", "city_code", "district_code", "profile_completed")


def merge_register_row(current: Mapping[str, object], row: InstitutionRow) -> dict[str, object] | None:
    """The institution after applying an import row, with its version bumped; None if unchanged.

    The register fields are overwritten; a row without a city keeps the known city and district
    (unless the province changed), and a new city without a district clears the old district.
    """
    merged = dict(current)
    merged.update(name=row.name, type=row.type, province_code=row.province_code)
    if row.city_code:
        if row.city_code != current.get("city_code") or row.district_code:
            merged["district_code"] = row.district_code
        merged["city_code"] = row.city_code
    elif row.province_code != current.get("province_code"):
        merged["city_code"] = merged["district_code"] = None
    merged["profile_completed"] = profile_completed({k: _text(merged.get(k)) for k in PROFILE_FIELDS})
    if all(merged.get(k) == current.get(k) for k in REGISTER_KEYS):
        return None
    merged["version"] = int(str(current.get("version") or 0)) + 1
    return merged


def _text(value: object) -> str | None:
    return None if value is None else str(value)


KEPT_FROM_REGISTER = ("type", "city_code", "district_code")


def merge_profile(current: Mapping[str, str | None], profile: Mapping[str, str | None]) -> dict[str, str | None]:
    """The base info after a save: given fields replace the old ones; the fields that come from the
    register (type, city, district) are kept when left empty, except that a new city drops the old
    district. The province never changes here."""
    merged: dict[str, str | None] = {name: (profile.get(name) or None) for name in PROFILE_FIELDS}
    merged["province_code"] = current.get("province_code")
    for name in KEPT_FROM_REGISTER:
        if merged[name] is None:
            merged[name] = current.get(name)
    city_changed = profile.get("city_code") and profile.get("city_code") != current.get("city_code")
    if city_changed and not profile.get("district_code"):
        merged["district_code"] = None
    return merged
