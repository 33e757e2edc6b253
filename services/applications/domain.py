"""Pure rules and state transitions of the applications service: no I/O."""

from __future__ import annotations

import html
import io
import re
import zipfile
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

import nh3

from services.applications.exceptions import (
    InvalidTransition,
    MajorNotAllowed,
    NotEditable,
    PlanNotOpen,
    UnsupportedFileType,
    ValidationFailed,
)

MAX_VISIBLE_CHARS = 1_000
MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_FILES_PER_APPLICATION = 5


class Status(StrEnum):
    draft = "draft"
    pending = "pending"
    approved = "approved"
    rejected = "rejected"


class Stage(StrEnum):
    municipal = "municipal"
    provincial = "provincial"


class Decision(StrEnum):
    approve = "approve"
    reject = "reject"
    # "return" is a Python keyword, hence the trailing underscore on the member name.
    return_ = "return"


STATUSES = tuple(s.value for s in Status)


# --- plans -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanWindow:
    state: str
    opens_at: datetime
    closes_at: datetime

    def is_open(self, now: datetime) -> bool:
        """A plan takes applications from `opens_at` (inclusive) until `closes_at` (exclusive)."""
        return self.state == "published" and self.opens_at <= now < self.closes_at


def require_open(window: PlanWindow, now: datetime) -> None:
    if not window.is_open(now):
        raise PlanNotOpen()


#: Plans are run in Beijing time; every time shown to users (exports included) is in it.
LOCAL_TZ = ZoneInfo("Asia/Shanghai")


def local_timestamp(moment: datetime) -> str:
    return moment.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M:%S")


# --- state machine ---------------------------------------------------------------------------------


def is_editable(status: str) -> bool:
    """Drafts (including returned ones) and rejected applications can be edited; nothing else."""
    return status in (Status.draft, Status.rejected)


def require_editable(status: str) -> None:
    if not is_editable(status):
        raise NotEditable()


def require_deletable(status: str, *, ever_submitted: bool) -> None:
    """Only a draft that never went to review: a returned one keeps its review history."""
    if status != Status.draft:
        raise InvalidTransition("只有待提交（草稿）状态的申报可以删除。")
    if ever_submitted:
        raise InvalidTransition("已退回修改的申报保留审核记录，不能删除；请修改后重新提交。")


def require_still_allowed(*, certificate_active: bool, allowed: set[str], codes: list[str]) -> None:
    """At submission the certificate must still be offered and every major still allowed by it:
    an organisation may withdraw either after the draft was saved."""
    if not certificate_active:
        raise ValidationFailed("certificate_id", "所选证书已停用，不能提交。")
    require_majors_allowed(codes, allowed)


def require_majors_allowed(codes: list[str], allowed: set[str]) -> None:
    """Every major line's code must be one the certificate allows (the error names each line)."""
    refused = [i for i, code in enumerate(codes) if code not in allowed]
    if refused:
        raise MajorNotAllowed([f"majors.{i}.major_code" for i in refused])


def submit_stage(status: str, *, municipal_review: bool) -> Stage:
    """The review stage a submission goes to; refused unless the application is a draft or rejected."""
    if not is_editable(status):
        raise InvalidTransition("该申报已提交或已审核通过，不能重复提交。")
    return Stage.municipal if municipal_review else Stage.provincial


@dataclass(frozen=True)
class Outcome:
    status: Status
    review_stage: Stage | None
    approved_trainees: int | None = None
    returned_reason: str | None = None


def decide(
    *,
    status: str,
    review_stage: str | None,
    reviewer_stage: Stage,
    decision: Decision,
    comment: str | None,
    approved_trainees: int | None,
    trainees_total: int | None,
    plan_open: bool,
) -> Outcome:
    """Apply one reviewer's decision; raises when the decision is not allowed at this point."""
    if status != Status.pending or review_stage != reviewer_stage:
        raise InvalidTransition("该申报当前不在您的审核环节。")
    reason = (comment or "").strip()
    if decision in (Decision.reject, Decision.return_) and not reason:
        raise ValidationFailed("comment", "请填写原因。")
    if reviewer_stage is Stage.municipal:
        if decision is Decision.approve:
            return Outcome(Status.pending, Stage.provincial)
        if decision is Decision.reject:
            return Outcome(Status.rejected, None)
        raise InvalidTransition("地市级审核只能通过或不通过。")
    if decision is Decision.approve:
        if approved_trainees is None or approved_trainees < 1:
            raise ValidationFailed("approved_trainees", "请填写已批准培训人数（正整数）。")
        if trainees_total is not None and approved_trainees > trainees_total:
            raise ValidationFailed("approved_trainees", "已批准培训人数不能超过申报培训人数。")
        return Outcome(Status.approved, None, approved_trainees=approved_trainees)
    if decision is Decision.reject:
        return Outcome(Status.rejected, None)
    if not plan_open:
        raise PlanNotOpen("申报计划已截止，不能退回修改。")
    return Outcome(Status.draft, None, returned_reason=reason)


# --- majors and trainee numbers --------------------------------------------------------------------


@dataclass(frozen=True)
class MajorLine:
    major_code: str
    students: int | None = None
    teachers: int | None = None
    trainees: int | None = None


def check_majors(
    *, by_major: bool, lines: list[MajorLine], allowed: set[str], trainees_total: int | None
) -> tuple[list[MajorLine], int]:
    """Validate the major lines against the plan's rules and the certificate; return them with the total.

    By-major plans: at least one line, each with positive numbers; the total is their sum (a client's
    total is ignored). Other plans: the total is required, major lines carry codes only.
    """
    codes = [line.major_code for line in lines]
    duplicates = {c for c in codes if codes.count(c) > 1}
    if duplicates:
        raise ValidationFailed("majors", "专业不能重复：" + "、".join(sorted(duplicates)))
    require_majors_allowed(codes, allowed)
    if by_major:
        if not lines:
            raise ValidationFailed("majors", "按专业填报的计划至少需要填写一个专业。")
        for i, line in enumerate(lines):
            for name in ("students", "teachers", "trainees"):
                value = getattr(line, name)
                if value is None or value < 1:
                    raise ValidationFailed(f"majors.{i}.{name}", "请填写正整数。")
        return lines, sum(line.trainees or 0 for line in lines)
    if trainees_total is None or trainees_total < 1:
        raise ValidationFailed("trainees_total", "请填写拟申报的培训人数（正整数）。")
    return [MajorLine(major_code=line.major_code) for line in lines], trainees_total


# --- checking before submission (the Guangxi guide's advice) --------------------------------------


@dataclass(frozen=True)
class Check:
    item: str
    ok: bool
    blocking: bool
    message: str


def pre_submission_checks(
    *,
    status: str,
    plan_open: bool,
    profile_completed: bool,
    by_major: bool,
    lines: list[MajorLine],
    attachments: int,
) -> list[Check]:
    """What a school should verify before it submits. Blocking items stop a submission; the others
    are the guide's advice (numbers that match the students, evidence uploaded and grouped)."""
    checks = [
        Check("status", is_editable(status), True,
              "可以提交。" if is_editable(status) else "该申报已提交或已审核通过，不能再次提交。"),
        Check("plan_open", plan_open, True, "申报计划在申报时间内。" if plan_open else "申报计划不在申报时间内。"),
        Check("profile", profile_completed, True,
              "院校基础信息已完善。" if profile_completed else "请先完善院校基础信息。"),
    ]  # fmt: skip
    if by_major:
        over = [line.major_code for line in lines if (line.trainees or 0) > (line.students or 0)]
        checks.append(
            Check("trainees", not over, False,
                  "各专业拟培训人数未超过在校生人数。" if not over
                  else "以下专业的拟培训人数超过在校生人数，请勿虚报：" + "、".join(over))
        )  # fmt: skip
    else:
        checks.append(
            Check("majors", True, False,
                  "已限定拟申报专业，只有这些专业的学生可以报考。" if lines
                  else "未添加拟申报专业：该证书对应的所有专业的学生均可报考。")
        )  # fmt: skip
    checks.append(
        Check("evidence", attachments > 0, False,
              f"已上传 {attachments} 个佐证材料（建议 1-3 个，按教师、场地、设备归类）。" if attachments
              else "尚未上传佐证材料（选填）；如需提供，请按证书标准准备师资、场地、设备材料。")
    )  # fmt: skip
    return checks


# --- rich text -------------------------------------------------------------------------------------

ALLOWED_TAGS = frozenset(
    {
        "p", "br", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "b", "em", "i", "u", "s",
        "ul", "ol", "li", "blockquote", "table", "thead", "tbody", "tfoot", "tr", "th", "td", "caption", "a",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan"}}
ALLOWED_SCHEMES = frozenset({"http", "https", "mailto"})
_SPACES = re.compile(r"\s+")


def sanitize_html(raw: str) -> str:
    """Keep what a rich-text editor needs; drop scripts, styles, images, event attributes, bad links."""
    return nh3.clean(
        raw,
        tags=set(ALLOWED_TAGS),
        attributes={k: set(v) for k, v in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(ALLOWED_SCHEMES),
        link_rel="noopener noreferrer nofollow",
        clean_content_tags={"script", "style"},
        strip_comments=True,
    )


def visible_text(fragment: str) -> str:
    """The text a reader sees: tags removed, entities decoded, runs of whitespace collapsed."""
    text = html.unescape(nh3.clean(fragment, tags=set(), clean_content_tags={"script", "style"}))
    return _SPACES.sub(" ", text).strip()


def clean_rich_text(field: str, raw: str) -> str:
    """Sanitise a rich-text field and check it is present and at most 1,000 visible characters."""
    cleaned = sanitize_html(raw or "")
    length = len(visible_text(cleaned))
    if length == 0:
        raise ValidationFailed(field, "此项为必填项。")
    if length > MAX_VISIBLE_CHARS:
        raise ValidationFailed(field, f"内容不能超过 {MAX_VISIBLE_CHARS} 字（当前 {length} 字）。")
    return cleaned


# --- evidence files --------------------------------------------------------------------------------


class FileKind(StrEnum):
    pdf = "pdf"
    doc = "doc"
    docx = "docx"


CONTENT_TYPES = {
    FileKind.pdf: "application/pdf",
    FileKind.doc: "application/msword",
    FileKind.docx: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}
_OLE_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")
_DOCX_MAIN = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
_MACRO_MARKERS = ("macroenabled", "vbaproject")
_MAX_CONTENT_TYPES_XML = 1024 * 1024


def sniff_file(data: bytes) -> FileKind:
    """Recognise a PDF, a Word 97-2003 document or a Word package by its bytes; refuse anything else."""
    if data.startswith(b"%PDF-"):
        return FileKind.pdf
    if data.startswith(_OLE_MAGIC):
        return _check_ole_word(data)
    if data.startswith(b"PK\x03\x04"):
        return _check_docx(data)
    raise UnsupportedFileType()


def _check_ole_word(data: bytes) -> FileKind:
    # Directory entry names of a compound file are UTF-16LE; a Word document has a WordDocument stream.
    if "WordDocument".encode("utf-16-le") not in data:
        raise UnsupportedFileType()
    if "Macros".encode("utf-16-le") in data or "_VBA_PROJECT".encode("utf-16-le") in data:
        raise UnsupportedFileType("不接受包含宏的 Word 文档。")
    return FileKind.doc


def _check_docx(data: bytes) -> FileKind:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            info = archive.getinfo("[Content_Types].xml")
            if info.file_size > _MAX_CONTENT_TYPES_XML:
                raise UnsupportedFileType()
            content_types = archive.read(info).decode("utf-8", errors="replace")
    except (zipfile.BadZipFile, KeyError, OSError, RuntimeError, NotImplementedError) as exc:
        raise UnsupportedFileType() from exc
    lowered = content_types.lower()
    if any(marker in lowered for marker in _MACRO_MARKERS) or any("vbaproject" in n.lower() for n in names):
        raise UnsupportedFileType("不接受启用宏的 Word 文档（.docm）。")
    if _DOCX_MAIN not in content_types or "word/document.xml" not in names:
        raise UnsupportedFileType()
    return FileKind.docx


_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f\"<>|:*?]")


def safe_filename(raw: str | None, kind: FileKind) -> str:
    """The original name for display only (files are stored under generated names): no path, no controls."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE_NAME.sub("_", name).strip().lstrip(".")
    if not name:
        name = f"附件.{kind.value}"
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        name = (stem[:190] + dot + ext[:9]) if dot else name[:200]
    return name
