"""Conditional requests: the ETag of a versioned resource and the version an If-Match names."""

from __future__ import annotations

from shared.http.errors import ProblemError


def etag(version: int) -> str:
    return f'"{version}"'


def etag_version(value: str) -> int | None:
    """The version an ETag or If-Match value names (`"3"` or `W/"3"`); None if it names none."""
    try:
        return int(value.strip().removeprefix("W/").strip('"'))
    except ValueError:
        return None


def if_match_version(value: str | None) -> int | None:
    """The If-Match header of a request: None without one; one that names no version is a 412."""
    if value is None:
        return None
    version = etag_version(value)
    if version is None:
        raise ProblemError(412, "version_conflict", "版本号无效，请刷新后重试。")
    return version
