"""Bulk import of institutions by departments: row-level errors with row numbers, no half-imported
row, scope per row, idempotent re-runs (no change, no event), CSV and XLSX."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from shared.testing.bus import BusProbe
from shared.testing.harness import RunningService
from tests.registry.factories import Roles, broken_xlsx_bytes, csv_bytes, events_matching, xlsx_bytes

GOOD = [
    ("4145880001", "南宁市第一测试中等职业学校", "中职", "45", "4501", "450103"),
    ("4145880002", "柳州市测试职业技术学院", "higher_vocational", "45", "4502", ""),
    ("4145880003", "桂林测试本科学院", "本科", "45", "4503", ""),
]
BAD = [
    ("41458800", "代码太短的学校", "中职", "45", "4501", ""),  # row 5: code
    ("4145880005", "类型不对的学校", "大学", "45", "4501", ""),  # row 6: type
    ("4145880006", "区县不属于城市的学校", "中职", "45", "4501", "110101"),  # row 7: district
    ("4145880001", "重复代码的学校", "中职", "45", "4501", ""),  # row 8: repeats row 2
    ("4144880007", "广州市越权学校", "中职", "44", "4401", ""),  # row 9: out of the province's scope
    ("4145880008", "广西机电职业技术学院", "高职", "45", "4501", ""),  # row 10: name taken by another code
]


async def _import(registry: RunningService, headers: dict[str, str], content: bytes, name: str = "schools.csv") -> Any:
    files = {"file": (name, content, "application/octet-stream")}
    return await registry.client.post("/api/v1/institutions/import", files=files, headers=headers)


async def _stored(registry: RunningService, codes: list[str]) -> dict[str, dict[str, Any]]:
    async with registry.runtime.sessionmaker() as session:
        rows = await session.execute(
            text("SELECT code, name, type, city_code, district_code, version FROM institutions WHERE code = ANY(:c)"),
            {"c": codes},
        )
        return {r.code: dict(r._mapping) for r in rows}


async def test_good_bad_and_duplicate_rows_then_rerun(registry: RunningService, roles: Roles, probe: BusProbe) -> None:
    content = csv_bytes([*GOOD, *BAD])
    response = await _import(registry, roles.province("45"), content)
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["total"], report["created"], report["updated"], report["unchanged"]) == (9, 3, 0, 0)
    assert report["failed"] == 6
    assert [(e["row"], e["field"]) for e in report["errors"]] == [
        (5, "code"),
        (6, "type"),
        (7, "district_code"),
        (8, "code"),
        (9, "province_code"),
        (10, "name"),
    ]
    assert all(e["message"] for e in report["errors"])
    assert "第2行" in report["errors"][3]["message"]

    stored = await _stored(registry, [r[0] for r in GOOD + BAD])
    assert set(stored) == {"4145880001", "4145880002", "4145880003"}
    assert stored["4145880001"]["name"] == "南宁市第一测试中等职业学校"  # not the duplicate row's name
    assert stored["4145880001"]["type"] == "secondary_vocational"
    assert stored["4145880001"]["district_code"] == "450103"

    good_codes = {r[0] for r in GOOD}
    await events_matching(probe, "registry.institution.upserted", lambda e: e["subject"] in good_codes, count=3)

    rerun = (await _import(registry, roles.province("45"), content)).json()
    assert (rerun["created"], rerun["updated"], rerun["unchanged"], rerun["failed"]) == (0, 0, 3, 6)
    again = await _stored(registry, list(good_codes))
    assert {c: r["version"] for c, r in again.items()} == {c: 1 for c in good_codes}
    async with registry.runtime.sessionmaker() as session:
        staged = await session.scalar(
            text("SELECT count(*) FROM outbox WHERE payload->>'subject' = ANY(:c)"), {"c": list(good_codes)}
        )
    assert staged == 3  # the re-run emitted nothing


async def test_changed_row_updates_with_a_new_version(registry: RunningService, roles: Roles, probe: BusProbe) -> None:
    first = [("4145880101", "南宁市改名前中职学校", "中职", "45", "4501", "")]
    assert (await _import(registry, roles.province("45"), csv_bytes(first))).json()["created"] == 1
    renamed = [("4145880101", "南宁市改名后中职学校", "中职", "45", "4501", "")]
    report = (await _import(registry, roles.province("45"), csv_bytes(renamed))).json()
    assert (report["created"], report["updated"]) == (0, 1)
    events = await events_matching(
        probe, "registry.institution.upserted", lambda e: e["subject"] == "4145880101", count=2
    )
    assert [(e["subject_version"], e["data"]["name"]) for e in events] == [
        (1, "南宁市改名前中职学校"),
        (2, "南宁市改名后中职学校"),
    ]


async def test_xlsx_upload_and_municipal_scope(registry: RunningService, roles: Roles) -> None:
    rows = [
        (4145880201, "南宁市表格导入中职学校", "中职", 45, 4501, None),  # numbers as Excel stores them
        ("4145880202", "柳州市表格导入中职学校", "中职", "45", "4502", None),
    ]
    response = await _import(registry, roles.city("45", "4501"), xlsx_bytes(rows), name="schools.xlsx")
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["created"] == 1
    assert [(e["row"], e["field"]) for e in report["errors"]] == [(3, "province_code")]
    stored = await _stored(registry, ["4145880201", "4145880202"])
    assert set(stored) == {"4145880201"}


async def test_foreign_department_cannot_move_an_existing_school(registry: RunningService, roles: Roles) -> None:
    hijack = [("4145010867", "被改名的学校", "中职", "11", "1101", "")]
    report = (await _import(registry, roles.province("11"), csv_bytes(hijack))).json()
    assert report["created"] == report["updated"] == 0
    assert report["errors"][0]["field"] == "code"
    assert (await _stored(registry, ["4145010867"]))["4145010867"]["name"] == "广西机电职业技术学院"


async def test_unreadable_files_and_roles(registry: RunningService, roles: Roles) -> None:
    garbage = await _import(registry, roles.province("45"), b"PK\x03\x04not really a workbook", name="x.xlsx")
    assert garbage.status_code == 422 and garbage.json()["code"] == "import_file_invalid"
    for part in ("xl/workbook.xml", "xl/worksheets/sheet1.xml", "[Content_Types].xml"):
        broken = await _import(registry, roles.province("45"), broken_xlsx_bytes(part), name="x.xlsx")
        assert broken.status_code == 422 and broken.json()["code"] == "import_file_invalid", (part, broken.text)
    wrong_columns = await _import(registry, roles.province("45"), b"foo,bar\n1,2\n")
    assert wrong_columns.status_code == 422 and wrong_columns.json()["code"] == "import_file_invalid"
    empty = await _import(registry, roles.province("45"), b"")
    assert empty.status_code == 422
    too_big = await _import(registry, roles.province("45"), b"code,name\n" + b"x" * (5 * 1024 * 1024))
    assert too_big.status_code == 413
    assert (await _import(registry, roles.school(), csv_bytes(GOOD))).status_code == 403
    assert (await _import(registry, {}, csv_bytes(GOOD))).status_code == 401
