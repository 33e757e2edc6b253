"""Evidence files: the upload corpus (type by bytes, size, count, names), downloads, scope and state."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest

from tests.applications.factories import (
    API,
    World,
    doc_bytes,
    docm_bytes,
    docx_bytes,
    executable_bytes,
    pdf_bytes,
    plain_zip_bytes,
)

MIB = 1024 * 1024


async def _upload(
    world: World, app_id: str, headers: dict[str, str], name: str, data: bytes, mime: str = "application/pdf"
):  # type: ignore[no-untyped-def]
    return await world.client.post(f"{API}/{app_id}/attachments", files={"file": (name, data, mime)}, headers=headers)


@pytest.fixture
async def draft(world: World) -> tuple[World, dict, object]:  # type: ignore[type-arg]
    plan, cert, school = await world.plan(), await world.certificate(), await world.school()
    return world, await world.draft(school, plan, cert), school


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("setup.pdf", executable_bytes(), "unsupported_file_type"),
        ("材料.docx", plain_zip_bytes(), "unsupported_file_type"),
        ("宏.docx", docm_bytes(), "unsupported_file_type"),
        ("宏2.docx", docx_bytes(with_vba=True), "unsupported_file_type"),
        ("old-macro.doc", doc_bytes(macros=True), "unsupported_file_type"),
        ("notes.pdf", b"just some text pretending", "unsupported_file_type"),
        ("page.pdf", b"<html><script>alert(1)</script></html>", "unsupported_file_type"),
        ("empty.pdf", b"", "unsupported_file_type"),
    ],
)
async def test_upload_corpus_refused(draft, name: str, data: bytes, code: str) -> None:  # type: ignore[no-untyped-def]
    world, app, school = draft
    response = await _upload(world, app["id"], school.headers, name, data)
    assert response.status_code == 415, response.text
    assert response.json()["code"] == code and response.json()["detail"]


async def test_size_limit_is_exactly_twenty_mib(draft) -> None:  # type: ignore[no-untyped-def]
    world, app, school = draft
    over = await _upload(world, app["id"], school.headers, "big.pdf", pdf_bytes(20 * MIB + 1))
    assert over.status_code == 413 and over.json()["code"] == "file_too_large"
    exact = await _upload(world, app["id"], school.headers, "exact.pdf", pdf_bytes(20 * MIB))
    assert exact.status_code == 201 and exact.json()["size"] == 20 * MIB


async def test_accepted_types_names_and_download_headers(draft, storage_dir: Path) -> None:  # type: ignore[no-untyped-def]
    world, app, school = draft
    pdf = await _upload(world, app["id"], school.sub_headers, "../../etc/师资 证明.pdf", pdf_bytes())
    assert pdf.status_code == 201, pdf.text
    assert pdf.json()["filename"] == "师资 证明.pdf" and pdf.json()["content_type"] == "application/pdf"
    docx = await _upload(world, app["id"], school.headers, "C:\\Users\\x\\场地说明.docx", docx_bytes())
    assert docx.status_code == 201 and docx.json()["filename"] == "场地说明.docx"
    doc = await _upload(world, app["id"], school.headers, "旧版.doc", doc_bytes(), "application/msword")
    assert doc.status_code == 201 and doc.json()["content_type"] == "application/msword"
    stored = [p for p in storage_dir.rglob("*") if p.is_file()]
    assert stored and all("师资" not in p.name and "etc" not in str(p.relative_to(storage_dir)) for p in stored)

    url = f"{API}/{app['id']}/attachments/{pdf.json()['id']}"
    download = await world.client.get(url, headers=school.headers)
    assert download.status_code == 200 and download.content == pdf_bytes()
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["content-type"] == "application/pdf"
    disposition = download.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert f"filename*=UTF-8''{quote('师资 证明.pdf', safe='')}" in disposition
    detail = (await world.client.get(f"{API}/{app['id']}", headers=school.headers)).json()
    assert [a["filename"] for a in detail["attachments"]] == ["师资 证明.pdf", "场地说明.docx", "旧版.doc"]

    foreign = await world.school()
    assert (await world.client.get(url, headers=foreign.headers)).status_code == 404
    assert (await world.client.get(url, headers=world.provincial())).status_code == 404, "a draft is not yet visible"
    other_app_url = f"{API}/{app['id']}/attachments/00000000-0000-0000-0000-000000000000"
    assert (await world.client.get(other_app_url, headers=school.headers)).status_code == 404

    removed = await world.client.delete(url, headers=school.headers)
    assert removed.status_code == 204
    assert (await world.client.get(url, headers=school.headers)).status_code == 404
    assert len([p for p in storage_dir.rglob("*") if p.is_file()]) == len(stored) - 1


async def test_five_files_at_most_and_locked_after_submit(draft) -> None:  # type: ignore[no-untyped-def]
    world, app, school = draft
    for i in range(5):
        assert (await _upload(world, app["id"], school.headers, f"{i}.pdf", pdf_bytes())).status_code == 201
    sixth = await _upload(world, app["id"], school.headers, "6.pdf", pdf_bytes())
    assert sixth.status_code == 409 and sixth.json()["code"] == "too_many_files"
    first_id = (await world.client.get(f"{API}/{app['id']}", headers=school.headers)).json()["attachments"][0]["id"]
    assert (await world.client.post(f"{API}/{app['id']}/submit", headers=school.headers)).status_code == 200
    locked = await world.client.delete(f"{API}/{app['id']}/attachments/{first_id}", headers=school.headers)
    assert locked.status_code == 409 and locked.json()["code"] == "not_editable"
    reviewer = await world.client.get(f"{API}/{app['id']}/attachments/{first_id}", headers=world.municipal())
    assert reviewer.status_code == 200, "reviewers read the evidence of what they review"
    refused = await _upload(world, app["id"], world.provincial(), "x.pdf", pdf_bytes())
    assert refused.status_code == 403


async def test_deleting_a_draft_removes_its_files(draft, storage_dir: Path) -> None:  # type: ignore[no-untyped-def]
    world, app, school = draft
    before = {p for p in storage_dir.rglob("*") if p.is_file()}
    await _upload(world, app["id"], school.headers, "a.pdf", pdf_bytes())
    assert len({p for p in storage_dir.rglob("*") if p.is_file()} - before) == 1
    assert (await world.client.delete(f"{API}/{app['id']}", headers=school.headers)).status_code == 204
    assert {p for p in storage_dir.rglob("*") if p.is_file()} - before == set()


async def test_a_retried_upload_with_its_idempotency_key_stores_the_file_once(draft) -> None:  # type: ignore[no-untyped-def]
    world, app, school = draft
    keyed = {**school.headers, "Idempotency-Key": "upload-faculty-1"}
    first = await _upload(world, app["id"], keyed, "师资证明.pdf", pdf_bytes(2048))
    again = await _upload(world, app["id"], keyed, "师资证明.pdf", pdf_bytes(2048))
    assert first.status_code == again.status_code == 201, again.text
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    other_file = await _upload(world, app["id"], keyed, "场地证明.pdf", pdf_bytes(4096))
    assert other_file.status_code == 422 and other_file.json()["code"] == "idempotency_key_reused"
    listed = (await world.client.get(f"{API}/{app['id']}", headers=school.headers)).json()["attachments"]
    assert [a["id"] for a in listed] == [first.json()["id"]]
