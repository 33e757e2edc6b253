"""The authorisation matrix: every operation of the service's OpenAPI × every role (and a foreign
scope of each), with the expected status of each cell. An operation missing from the matrix fails."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.applications.factories import API, School, World, pdf_bytes

PRINCIPALS = (
    "anonymous",
    "institution",
    "institution_sub",
    "foreign_institution",
    "municipal",
    "foreign_municipal",
    "provincial",
    "foreign_provincial",
    "org",
    "foreign_org",
    "operator",
)
DEPARTMENTS_ONLY = {"anonymous": "401", "institution": "403", "institution_sub": "403", "foreign_institution": "403",
                    "municipal": "200", "foreign_municipal": "404", "provincial": "200", "foreign_provincial": "404",
                    "org": "403", "foreign_org": "403", "operator": "200"}  # fmt: skip
READ_BY_SCOPE = {"anonymous": "401", "institution": "200", "institution_sub": "200", "foreign_institution": "404",
                 "municipal": "200", "foreign_municipal": "404", "provincial": "200", "foreign_provincial": "404",
                 "org": "200", "foreign_org": "404", "operator": "200"}  # fmt: skip


def school_write(ok: str, sub: str | None = None) -> dict[str, str]:
    cells = {p: "403" for p in PRINCIPALS}
    cells.update(anonymous="401", institution=ok, institution_sub=sub or ok, foreign_institution="404")
    return cells


@dataclass(frozen=True)
class Cell:
    target: str  # what each request acts on: see `Targets.build`
    expect: dict[str, str]  # principal -> "status" or "status:detail" (see `check`)
    read_only: bool = False  # one target serves every principal; otherwise each gets a fresh one


MATRIX: dict[tuple[str, str], Cell] = {
    ("GET", "/healthz"): Cell("none", {p: "200" for p in PRINCIPALS}, read_only=True),
    ("GET", "/readyz"): Cell("none", {p: "200" for p in PRINCIPALS}, read_only=True),
    ("POST", API): Cell(
        "new",
        {**school_write("201"), "foreign_institution": "422"},  # a school of another province: plan_province_mismatch
    ),
    ("GET", API): Cell(
        "municipal_stage",
        {p: f"200:{'hidden' if p.startswith('foreign') else 'visible'}" for p in PRINCIPALS} | {"anonymous": "401"},
        read_only=True,
    ),
    ("GET", f"{API}/export"): Cell("plan", DEPARTMENTS_ONLY, read_only=True),
    ("GET", f"{API}/statistics"): Cell("plan", DEPARTMENTS_ONLY, read_only=True),
    ("POST", f"{API}/batch-reviews"): Cell(
        "provincial_stage",
        {p: "403" for p in PRINCIPALS}
        | {"anonymous": "401", "provincial": "200:ok", "foreign_provincial": "200:refused"},
    ),
    ("GET", f"{API}/{{application_id}}"): Cell("municipal_stage", READ_BY_SCOPE, read_only=True),
    ("PUT", f"{API}/{{application_id}}"): Cell("draft", school_write("200")),
    ("DELETE", f"{API}/{{application_id}}"): Cell("draft", school_write("204", sub="403")),
    ("POST", f"{API}/{{application_id}}/submit"): Cell("draft", school_write("200", sub="403")),
    ("POST", f"{API}/{{application_id}}/reviews"): Cell(
        "reviewable",
        {p: "403" for p in PRINCIPALS}
        | {
            "anonymous": "401",
            "municipal": "200",
            "foreign_municipal": "404",
            "provincial": "200",
            "foreign_provincial": "404",
        },
    ),
    ("POST", f"{API}/{{application_id}}/attachments"): Cell("draft", school_write("201")),
    ("GET", f"{API}/{{application_id}}/attachments/{{attachment_id}}"): Cell(
        "municipal_stage_file", READ_BY_SCOPE, read_only=True
    ),
    ("DELETE", f"{API}/{{application_id}}/attachments/{{attachment_id}}"): Cell("draft_file", school_write("204")),
}


class Targets:
    """Builds a fresh object per cell, so that one cell's change never decides another's status."""

    def __init__(self, world: World) -> None:
        self.world = world

    async def setup(self) -> None:
        w = self.world
        self.plan_city = await w.plan(municipal_review=True)
        self.plan_province = await w.plan(municipal_review=False)
        self.cert = await w.certificate()
        self.foreign_school = await w.school(province="11", city="1101")
        self.pool = await w.schools(len(PRINCIPALS))

    async def school(self) -> School:
        return self.pool.pop()

    def headers(self, principal: str, school: School) -> dict[str, str]:
        w = self.world
        return {
            "anonymous": {},
            "institution": school.headers,
            "institution_sub": school.sub_headers,
            "foreign_institution": self.foreign_school.headers,
            "municipal": w.municipal("45", "4501"),
            "foreign_municipal": w.municipal("11", "1101"),
            "provincial": w.provincial("45"),
            "foreign_provincial": w.provincial("11"),
            "org": w.org(self.cert.org_id),
            "foreign_org": w.org("another-org"),
            "operator": w.operator(),
        }[principal]

    async def build(self, target: str, principal: str) -> tuple[School, dict[str, str]]:
        """The school the cell acts for, and the path/query values of the request."""
        w, school = self.world, await self.school()
        values: dict[str, str] = {"plan_id": self.plan_city.id}
        if target in ("none", "new", "plan"):
            return school, values
        plan = self.plan_city
        if target == "provincial_stage" or (target == "reviewable" and principal != "municipal"
                                             and principal != "foreign_municipal"):  # fmt: skip
            plan = self.plan_province
        application = await w.draft(school, plan, self.cert)
        values["application_id"] = application["id"]
        if target.endswith("_file"):
            uploaded = await w.client.post(
                f"{API}/{application['id']}/attachments",
                files={"file": ("证明.pdf", pdf_bytes(), "application/pdf")},
                headers=school.headers,
            )
            assert uploaded.status_code == 201, uploaded.text
            values["attachment_id"] = uploaded.json()["id"]
        if target in ("municipal_stage", "municipal_stage_file", "provincial_stage", "reviewable"):
            submitted = await w.client.post(f"{API}/{application['id']}/submit", headers=school.headers)
            assert submitted.status_code == 200, submitted.text
        return school, values

    def request(self, method: str, path: str, values: dict[str, str]) -> dict[str, Any]:
        w = self.world
        url = path.format(**values)
        kwargs: dict[str, Any] = {"method": method, "url": url, "headers": {}}
        if path.endswith("/export") or path.endswith("/statistics"):
            kwargs["params"] = {"plan_id": values["plan_id"]}
        if method == "POST" and path == API:
            kwargs["json"] = w.body(self.plan_city, self.cert)
        elif method == "PUT":
            kwargs["json"] = w.body(self.plan_city, self.cert)
            kwargs["headers"]["If-Match"] = '"1"'
        elif path.endswith("/reviews"):
            kwargs["json"] = {"decision": "approve", "approved_trainees": 1}
        elif path.endswith("/batch-reviews"):
            kwargs["json"] = {"application_ids": [values["application_id"]], "decision": "approve"}
        elif path.endswith("/attachments"):
            kwargs["files"] = {"file": ("材料.pdf", pdf_bytes(), "application/pdf")}
        return kwargs


def check(expected: str, response: Any, values: dict[str, str]) -> bool:
    status, _, detail = expected.partition(":")
    if str(response.status_code) != status:
        return False
    if detail in ("visible", "hidden"):
        ids = {i["id"] for i in response.json()["items"]}
        return (values["application_id"] in ids) is (detail == "visible")
    if detail in ("ok", "refused"):
        return response.json()["results"][0]["ok"] is (detail == "ok")
    return True


async def test_matrix_covers_every_operation_of_the_openapi(world: World) -> None:
    document = (await world.client.get("/api/v1/openapi/applications.json")).json()
    operations = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }
    assert operations - set(MATRIX) == set(), "operations without a row in the authorisation matrix"
    assert set(MATRIX) - operations == set(), "matrix rows for operations the service no longer has"
    for cell in MATRIX.values():
        assert set(cell.expect) == set(PRINCIPALS)


@pytest.mark.parametrize(("method", "path"), list(MATRIX), ids=[f"{m} {p}" for m, p in MATRIX])
async def test_authorisation_matrix(world: World, method: str, path: str) -> None:
    targets = Targets(world)
    await targets.setup()
    cell = MATRIX[(method, path)]
    document = (await world.client.get("/api/v1/openapi/applications.json")).json()
    documented = set(document["paths"][path][method.lower()]["responses"])
    wrong = []
    shared = await targets.build(cell.target, "") if cell.read_only else None
    for principal in PRINCIPALS:
        school, values = shared or await targets.build(cell.target, principal)
        kwargs = targets.request(method, path, values)
        kwargs["headers"] = {**kwargs["headers"], **targets.headers(principal, school)}
        response = await world.client.request(**kwargs)
        if not check(cell.expect[principal], response, values):
            wrong.append(
                f"{principal}: expected {cell.expect[principal]}, got {response.status_code} {response.text[:200]}"
            )
        if response.status_code >= 400 and path.startswith(API):
            assert response.headers["content-type"] == "application/problem+json"
        if str(response.status_code) not in documented:
            wrong.append(f"{principal}: status {response.status_code} is not documented in the OpenAPI")
    assert not wrong, "\n".join(wrong)
