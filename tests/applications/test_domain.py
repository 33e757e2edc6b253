"""Pure rules: the state machine (every transition allowed or refused), majors, rich text, file sniffing."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from services.applications import domain
from services.applications.domain import Decision, MajorLine, PlanWindow, Stage, Status
from services.applications.exceptions import (
    InvalidTransition,
    MajorNotAllowed,
    NotEditable,
    PlanNotOpen,
    UnsupportedFileType,
    ValidationFailed,
)
from tests.applications.factories import (
    doc_bytes,
    docm_bytes,
    docx_bytes,
    executable_bytes,
    pdf_bytes,
    plain_zip_bytes,
)

# --- state machine ---------------------------------------------------------------------------------

STATES: list[tuple[str, str | None]] = [
    ("draft", None),
    ("pending", "municipal"),
    ("pending", "provincial"),
    ("approved", None),
    ("rejected", None),
]
# (status, stage, reviewer, decision) -> resulting (status, stage), for every allowed decision.
ALLOWED = {
    ("pending", "municipal", Stage.municipal, Decision.approve): ("pending", "provincial"),
    ("pending", "municipal", Stage.municipal, Decision.reject): ("rejected", None),
    ("pending", "provincial", Stage.provincial, Decision.approve): ("approved", None),
    ("pending", "provincial", Stage.provincial, Decision.reject): ("rejected", None),
    ("pending", "provincial", Stage.provincial, Decision.return_): ("draft", None),
}


@pytest.mark.parametrize(
    ("state", "reviewer", "decision"), list(itertools.product(STATES, list(Stage), list(Decision)))
)
def test_every_review_transition_is_allowed_or_refused(
    state: tuple[str, str | None], reviewer: Stage, decision: Decision
) -> None:
    status, stage = state
    key = (status, stage, reviewer, decision)

    def run() -> domain.Outcome:
        return domain.decide(
            status=status,
            review_stage=stage,
            reviewer_stage=reviewer,
            decision=decision,
            comment="原因",
            approved_trainees=5,
            trainees_total=10,
            plan_open=True,
        )

    if key in ALLOWED:
        outcome = run()
        assert (outcome.status.value, outcome.review_stage.value if outcome.review_stage else None) == ALLOWED[key]
    else:
        with pytest.raises(InvalidTransition):
            run()


@pytest.mark.parametrize(("status", "_stage"), STATES)
def test_submit_edit_delete_per_status(status: str, _stage: str | None) -> None:
    editable = status in ("draft", "rejected")
    if editable:
        assert domain.submit_stage(status, municipal_review=True) is Stage.municipal
        assert domain.submit_stage(status, municipal_review=False) is Stage.provincial
        domain.require_editable(status)
    else:
        with pytest.raises(InvalidTransition):
            domain.submit_stage(status, municipal_review=False)
        with pytest.raises(NotEditable):
            domain.require_editable(status)
    if status == "draft":
        domain.require_deletable(status, ever_submitted=False)
        with pytest.raises(InvalidTransition):  # returned for modification: keeps its review history
            domain.require_deletable(status, ever_submitted=True)
    else:
        with pytest.raises(InvalidTransition):
            domain.require_deletable(status, ever_submitted=False)


def test_submission_needs_the_certificate_and_its_majors_still_offered() -> None:
    domain.require_still_allowed(certificate_active=True, allowed={"460104", "510201"}, codes=["510201"])
    domain.require_still_allowed(certificate_active=True, allowed={"460104"}, codes=[])
    with pytest.raises(ValidationFailed):
        domain.require_still_allowed(certificate_active=False, allowed={"460104"}, codes=["460104"])
    with pytest.raises(MajorNotAllowed) as refused:
        domain.require_still_allowed(certificate_active=True, allowed={"460104"}, codes=["460104", "510201"])
    assert [field for field, _ in refused.value.fields] == ["majors.1.major_code"]


def _provincial(decision: Decision, **kwargs) -> domain.Outcome:  # type: ignore[no-untyped-def]
    values = {"comment": "原因", "approved_trainees": 5, "trainees_total": 10, "plan_open": True} | kwargs
    return domain.decide(status="pending", review_stage="provincial", reviewer_stage=Stage.provincial,
                         decision=decision, **values)  # fmt: skip


def test_decision_details() -> None:
    assert _provincial(Decision.approve, approved_trainees=10).approved_trainees == 10
    for bad in (None, 0, 11):
        with pytest.raises(ValidationFailed):
            _provincial(Decision.approve, approved_trainees=bad)
    for decision in (Decision.reject, Decision.return_):
        with pytest.raises(ValidationFailed):
            _provincial(decision, comment="  ")
    assert _provincial(Decision.return_, comment=" 补充 ").returned_reason == "补充"
    with pytest.raises(PlanNotOpen):
        _provincial(Decision.return_, plan_open=False)
    assert _provincial(Decision.reject, plan_open=False).status is Status.rejected
    assert _provincial(Decision.approve, plan_open=False).status is Status.approved


def test_plan_window_boundaries() -> None:
    opens = datetime(2026, 3, 1, tzinfo=UTC)
    closes = opens + timedelta(days=30)
    window = PlanWindow("published", opens, closes)
    second = timedelta(seconds=1)
    assert [window.is_open(t) for t in (opens - second, opens, closes - second, closes, closes + second)] == [
        False, True, True, False, False,
    ]  # fmt: skip
    assert not PlanWindow("draft", opens, closes).is_open(opens + second)


# --- majors ----------------------------------------------------------------------------------------


def test_majors_by_major_and_not() -> None:
    allowed = {"A", "B"}
    lines, total = domain.check_majors(
        by_major=True, lines=[MajorLine("A", 1, 1, 4), MajorLine("B", 2, 2, 6)], allowed=allowed, trainees_total=999
    )
    assert total == 10 and len(lines) == 2
    lines, total = domain.check_majors(by_major=False, lines=[MajorLine("A", 5, 5, 5)], allowed=allowed,
                                       trainees_total=7)  # fmt: skip
    assert total == 7 and lines == [MajorLine("A")]
    with pytest.raises(MajorNotAllowed) as refused:
        domain.check_majors(by_major=False, lines=[MajorLine("A"), MajorLine("C")], allowed=allowed, trainees_total=1)
    assert refused.value.fields[0][0] == "majors.1.major_code"
    with pytest.raises(ValidationFailed):
        domain.check_majors(by_major=True, lines=[MajorLine("A", 1, 1, 1), MajorLine("A", 1, 1, 1)], allowed=allowed,
                            trainees_total=None)  # fmt: skip
    with pytest.raises(ValidationFailed):
        domain.check_majors(by_major=True, lines=[], allowed=allowed, trainees_total=5)
    with pytest.raises(ValidationFailed):
        domain.check_majors(by_major=False, lines=[], allowed=allowed, trainees_total=None)


# --- rich text -------------------------------------------------------------------------------------

XSS_CORPUS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/xss.js></SCRIPT>",
    '<img src=x onerror="alert(1)">',
    "<svg/onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    '<a href="javascript:alert(1)">x</a>',
    '<a href="JaVaScRiPt:alert(1)">x</a>',
    '<a href="  javascript:alert(1)">x</a>',
    '<a href="jav&#x09;ascript:alert(1)">x</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    '<a href="vbscript:msgbox(1)">x</a>',
    '<p style="background:url(javascript:alert(1))">x</p>',
    "<style>body{background:red}</style><p>x</p>",
    '<iframe src="https://evil.example"></iframe>',
    '<object data="x.swf"></object><embed src="x.swf">',
    '<form action="https://evil.example"><input name=a><button>go</button></form>',
    '<body onload="alert(1)">',
    '<div onmouseover="alert(1)">hover</div>',
    '<p onclick="alert(1)">click</p>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)></style></mglyph></table></mtext></math>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="javascript:alert(1)//">',
    '<link rel="stylesheet" href="https://evil.example/x.css">',
    "<!--<script>alert(1)</script>-->",
    "<<script>script>alert(1)<</script>/script>",
    '<a href="https://ok.example" target="_blank" onclick="x">ok</a>',
    '<table><tr><td colspan="2" onmouseover="x" style="color:red">单元格</td></tr></table>',
    '<h1 class="x" id="y">标题</h1><ul><li>一</li></ul><ol><li>二</li></ol>',
    "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>",
    '<img src="x" alt="\'><script>alert(1)</script>">',
    '<video><source onerror="alert(1)"></video><audio src=x onerror=alert(1)>',
    '<details open ontoggle="alert(1)">',
    "<template><script>alert(1)</script></template>",
    "<p>正常的<strong>加粗</strong><em>斜体</em><u>下划线</u></p>",
]
FORBIDDEN = ("<script", "onerror", "onload", "onclick", "onmouseover", "ontoggle", "javascript:", "vbscript:",
             "data:", "<img", "<style", "style=", "<iframe", "<svg", "<object", "<embed", "<form", "<input",
             "<meta", "<base", "<link", "<video", "<audio", "<math")  # fmt: skip


@pytest.mark.parametrize("dirty", XSS_CORPUS)
def test_sanitiser_removes_active_content_and_is_idempotent(dirty: str) -> None:
    once = domain.sanitize_html(dirty)
    lowered = once.lower()
    assert not [bad for bad in FORBIDDEN if bad in lowered], once
    assert domain.sanitize_html(once) == once


def test_sanitiser_keeps_what_an_editor_needs() -> None:
    rich = (
        "<h2>师资</h2><p><strong>双师</strong><em>型</em><u>教师</u></p><ul><li>一</li></ul>"
        '<table><tbody><tr><td colspan="2">表格</td></tr></tbody></table>'
        '<a href="https://example.com/a">链接</a><a href="mailto:a@example.com">邮件</a>'
    )
    cleaned = domain.sanitize_html(rich)
    kept = ["<h2>", "<strong>", "<em>", "<u>", "<ul>", "<li>", "<table>", 'colspan="2"']
    kept += ['href="https://example.com/a"', 'href="mailto:a@example.com"', 'rel="noopener noreferrer nofollow"']
    for fragment in kept:
        assert fragment in cleaned


def test_visible_length_counts_text_not_markup() -> None:
    assert domain.visible_text("<p><strong>一二</strong>&amp;三</p>") == "一二&三"
    assert domain.clean_rich_text("f", "<p>" + "<b>字</b>" * 1000 + "</p>")
    with pytest.raises(ValidationFailed):
        domain.clean_rich_text("f", "<p>" + "字" * 1001 + "</p>")
    with pytest.raises(ValidationFailed):
        domain.clean_rich_text("f", "<p>   </p><img src=x>")


# --- files -----------------------------------------------------------------------------------------


def test_sniffing() -> None:
    assert domain.sniff_file(pdf_bytes()) is domain.FileKind.pdf
    assert domain.sniff_file(docx_bytes()) is domain.FileKind.docx
    assert domain.sniff_file(doc_bytes()) is domain.FileKind.doc
    ole_without_word = bytes.fromhex("D0CF11E0A1B11AE1") + b"\0" * 600
    refused_corpus = [executable_bytes(), plain_zip_bytes(), docm_bytes(), docx_bytes(with_vba=True)]
    refused_corpus += [doc_bytes(macros=True), b"PK\x03\x04broken", ole_without_word, b""]
    for refused in refused_corpus:
        with pytest.raises(UnsupportedFileType):
            domain.sniff_file(refused)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\系统.docx", "系统.docx"),
        ("/abs/path/师资证明.pdf", "师资证明.pdf"),
        ("a\x00b\r\n.pdf", "a_b__.pdf"),
        ("..", "附件.pdf"),
        ("", "附件.pdf"),
        (None, "附件.pdf"),
        ('x"; filename=evil.exe', "x_; filename=evil.exe"),
    ],
)
def test_safe_filename(raw: str | None, expected: str) -> None:
    assert domain.safe_filename(raw, domain.FileKind.pdf) == expected
