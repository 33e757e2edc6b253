"""Demo organisations and certificates loaded by `seed-demo` (a plausible subset of 1+X
certificates; the full public list is not available as a data file)."""

from __future__ import annotations

from dataclasses import dataclass

DEMO_ORG = "工业和信息化部教育与考试中心"


@dataclass(frozen=True)
class DemoCertificate:
    org: str
    name: str
    majors: dict[str, tuple[str, ...]]  # level → allowed major codes


_COMPUTING_SECONDARY = ("710201", "710202", "710203", "710204", "710206", "710209")
_COMPUTING_ASSOCIATE = ("510201", "510202", "510203", "510204", "510205", "510206")
_COMPUTING_BACHELOR = ("310201", "310202", "310203", "310204", "310205")

CERTIFICATES: tuple[DemoCertificate, ...] = (
    DemoCertificate(
        DEMO_ORG,
        "Web前端开发",
        {
            "junior": _COMPUTING_SECONDARY + _COMPUTING_ASSOCIATE,
            "intermediate": _COMPUTING_ASSOCIATE + _COMPUTING_BACHELOR,
            "senior": _COMPUTING_ASSOCIATE + _COMPUTING_BACHELOR,
        },
    ),
    DemoCertificate(
        DEMO_ORG,
        "大数据应用开发（Python）",
        {
            "junior": ("710205", "710201", "510205", "510201", "510203"),
            "intermediate": ("510205", "510201", "510203", "310205"),
            "senior": ("510205", "310205", "310201"),
        },
    ),
    DemoCertificate(
        "北京中车行高新技术有限公司",
        "汽车运用与维修（含智能新能源汽车）",
        {
            "junior": ("700206", "700209", "700205", "500211", "500212"),
            "intermediate": ("500211", "500212", "460702", "500210"),
            "senior": ("500211", "500212", "460702", "260702"),
        },
    ),
    DemoCertificate(
        "中国物流与采购联合会",
        "物流管理",
        {
            "junior": ("730801", "730802", "530802"),
            "intermediate": ("530802", "530803", "530804", "530806"),
            "senior": ("530802", "330802"),
        },
    ),
    DemoCertificate(
        "北京中福长者文化科技有限公司",
        "老年照护",
        {
            "junior": ("790302", "790303", "720201", "520201"),
            "intermediate": ("520201", "520803", "590302"),
            "senior": ("520803", "590302", "320201", "390302"),
        },
    ),
    DemoCertificate(
        "用友网络科技股份有限公司",
        "业财一体信息化应用",
        {
            "junior": ("730301", "530302", "530304"),
            "intermediate": ("530302", "530304", "530301"),
            "senior": ("530302", "330302"),
        },
    ),
)
