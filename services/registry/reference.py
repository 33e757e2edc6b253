"""The reference data shipped in `data/` (see data/SOURCES.md): regions, majors, the Ministry list."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
MINISTRY_LIST = DATA_DIR / "moe_higher_ed_list_2025_flat.csv"
MAJOR_LEVELS = {
    "VOCATIONAL_SECONDARY": "secondary",
    "VOCATIONAL_ASSOCIATE": "associate",
    "VOCATIONAL_BACHELOR": "bachelor",
}


@dataclass(frozen=True)
class RegionRow:
    code: str
    name: str
    level: str
    parent_code: str | None


@dataclass(frozen=True)
class MajorRow:
    code: str
    name: str
    level: str
    category_code: str
    category_name: str
    class_code: str
    class_name: str


def _rows(name: str) -> list[dict[str, str]]:
    with (DATA_DIR / name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def provinces() -> list[tuple[str, str]]:
    return [(r["code"], r["name"]) for r in _rows("provinces.csv")]


def cities() -> list[tuple[str, str, str]]:
    return [(r["code"], r["name"], r["provinceCode"]) for r in _rows("cities.csv")]


def areas() -> list[tuple[str, str, str, str]]:
    return [(r["code"], r["name"], r["cityCode"], r["provinceCode"]) for r in _rows("areas.csv")]


def regions() -> list[RegionRow]:
    """Every province, city and district, parents first."""
    return [
        *(RegionRow(code, name, "province", None) for code, name in provinces()),
        *(RegionRow(code, name, "city", province) for code, name, province in cities()),
        *(RegionRow(code, name, "district", city) for code, name, city, _ in areas()),
    ]


def majors() -> list[MajorRow]:
    return [
        MajorRow(
            code=r["majorCode"],
            name=r["majorName"],
            level=MAJOR_LEVELS[r["educationLevel"]],
            category_code=r["categoryCode"],
            category_name=r["categoryName"],
            class_code=r["classCode"],
            class_name=r["className"],
        )
        for r in _rows("vocational-2021.csv")
        if r["itemLevel"] == "MAJOR"
    ]
