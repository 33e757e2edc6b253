"""Read an uploaded CSV or XLSX into a header and string records (row 1 is the header)."""

from __future__ import annotations

import csv
import io

from openpyxl import load_workbook

from services.registry.exceptions import ImportFileInvalid

XLSX_MAGIC = b"PK\x03\x04"
MAX_ROWS = 20_000
UNREADABLE_XLSX = "无法读取该 Excel 文件，请确认是 .xlsx 格式且未损坏。"


def _decode(content: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ImportFileInvalid("文件编码无法识别，请使用 UTF-8 编码的 CSV 或 XLSX 文件。")


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a code typed as a number in Excel
    return str(value).strip()


def _read_xlsx(content: bytes) -> list[list[str]]:
    # An uploaded workbook is untrusted input parsed by a third-party library: a broken package can
    # fail in any of its layers (zip, XML, openpyxl's own model), and each such failure is the
    # uploader's bad file, never a server error.
    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception as exc:
        raise ImportFileInvalid(UNREADABLE_XLSX) from exc
    try:
        if not workbook.worksheets:
            raise ImportFileInvalid("Excel 文件中没有工作表。")
        rows = []
        for row in workbook.worksheets[0].iter_rows(values_only=True):
            rows.append([_cell(v) for v in row])
            if len(rows) > MAX_ROWS + 1:
                break  # read_table refuses it; no need to inflate the rest
        return rows
    except ImportFileInvalid:
        raise
    except Exception as exc:
        raise ImportFileInvalid(UNREADABLE_XLSX) from exc
    finally:
        workbook.close()


def _read_csv(content: bytes) -> list[list[str]]:
    text = _decode(content)
    try:
        return [[c.strip() for c in row] for row in csv.reader(io.StringIO(text))]
    except csv.Error as exc:
        raise ImportFileInvalid("CSV 文件格式不正确。") from exc


def read_table(content: bytes) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """The header and the non-empty data rows with their 1-based row numbers in the file."""
    rows = _read_xlsx(content) if content.startswith(XLSX_MAGIC) else _read_csv(content)
    if not rows or not any(rows[0]):
        raise ImportFileInvalid("文件为空或缺少表头。")
    if len(rows) - 1 > MAX_ROWS:
        raise ImportFileInvalid(f"单个文件最多导入 {MAX_ROWS} 行。")
    header = [h.strip() for h in rows[0]]
    records = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(row):
            continue
        records.append((number, {header[i]: row[i] for i in range(min(len(header), len(row))) if header[i]}))
    return header, records
