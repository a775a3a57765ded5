"""Export a table an officer sees as CSV or Excel, streamed: keyset pages of rows become pandas frames one at a time.

Nothing holds a whole export: a page of ``CHUNK_ROWS`` rows is read, turned into a frame, written, and dropped
before the next is read. CSV goes out as it is written; an Excel workbook is written by XlsxWriter in its
``constant_memory`` mode (each row flushed to its temporary file as soon as the next begins) to a temporary
file that is then sent. pandas' own ``to_excel`` writes a frame column by column, which ``constant_memory``
cannot take (a row once left is flushed, so later cells of it would be lost): the rows of each frame are handed
to XlsxWriter one by one instead.
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator

import pandas as pd
import xlsxwriter

from dashboard.core.clock import iso
from dashboard.core.i18n import alert_place, kind_label, t

CHUNK_ROWS = 5_000
BOM = "\ufeff"  # Excel reads a CSV as UTF-8 (Chinese included) only when it starts with one
# The drill-down's events table: its columns in its order (layouts/district.py::table_columns), and their headings.
EVENT_COLUMNS = ("time", "domain", "kind", "street", "severity", "title", "value")
FREE_TEXT = ("street", "title")  # what publishers wrote, not the pack's words
# /alerts' trail: what each alert's line says, newest first (layouts/alerts_page.py::trail_item).
ALERT_COLUMNS = ("level", "title", "place", "status", "started", "resolved", "value", "baseline")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
EXCEL_MAX_ROWS = 1_048_576  # one sheet, the heading included

# A page reader: (cursor, how many) -> (rows, the next page's cursor or None at the end).
PageReader = Callable[[str | None, int], tuple[list[dict], str | None]]


class TooManyRows(ValueError):
    """An export that would hold more rows than an export may."""


def headings(columns: Iterable[str], lang: str) -> list[str]:
    """Return the table's headings of ``columns`` in ``lang``."""
    return [t(f"col_{c}", lang) for c in columns]


def event_cells(rows: list[dict], lang: str, tz: str, city, time_text: Callable[[int, str], str] | None = None
                ) -> list[dict]:
    """Return the cells the drill-down's table shows for event views, in one place for the table and its exports;
    the time by ``time_text`` (exports: with its year and seconds, a file outlives the day it was taken)."""
    time_text = time_text or local_time
    out = []
    for r in rows:
        value = "" if r["value"] is None else f"{r['value']:g}{(' ' + r['unit']) if r['unit'] else ''}"
        street = city.street_name(r["district"], r["street"], lang) if city is not None else r["street"] or ""
        out.append({"time": time_text(r["ts"], tz), "domain": t(r["domain"], lang), "kind": kind_label(r["kind"], lang),
                    "street": street, "severity": r["severity"], "title": r["title"] or "", "value": value})
    return out


def alert_cells(rows: list[dict], lang: str, tz: str, city) -> list[dict]:
    """Return the cells of alerts as /alerts' trail says them: level and status in words, the title in the
    reader's language, the place by name, times local to the second, value and baseline as numbers."""
    return [{"level": t(f"level_{r['level']}", lang), "title": (r["title_en"] if lang == "en" else r["title"]) or "",
             "place": alert_place(r, city, lang), "status": t(f"alert_{r['status']}", lang),
             "started": local_time(r["started_ms"], tz),
             "resolved": local_time(r["resolved_ms"], tz) if r["resolved_ms"] is not None else "",
             "value": r["value"], "baseline": r["baseline"]} for r in rows]


def local_time(ms: int, tz: str) -> str:
    """Return a local date and time to the second, as exports write them."""
    stamp = iso(ms, tz)
    return f"{stamp[:10]} {stamp[11:19]}"


def batches(rows: Iterable, size: int = CHUNK_ROWS) -> Iterator[list]:
    """Yield the rows of a streamed result ``size`` at a time."""
    batch: list = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def pages(read: PageReader, max_rows: int, chunk: int = CHUNK_ROWS) -> Iterator[list[dict]]:
    """Yield the rows page by page, following the cursors to the end; TooManyRows past ``max_rows``."""
    cursor, seen = None, 0
    while True:
        rows, cursor = read(cursor, min(chunk, max_rows - seen + 1))
        seen += len(rows)
        if seen > max_rows:
            raise TooManyRows(f"more than {max_rows:,} rows: narrow the window or the filters")
        if rows:
            yield rows
        if cursor is None:
            return


def frames(chunks: Iterable[list[dict]], columns: tuple[str, ...], cells) -> Iterator[pd.DataFrame]:
    """Yield one frame per chunk of rows, its columns ``columns`` as ``cells`` shows them."""
    for rows in chunks:
        yield pd.DataFrame(cells(rows), columns=list(columns))


def defuse(text):
    """Return a cell's text so that a spreadsheet never runs it as a formula: one starting with =, +, -, @, a tab
    or a carriage return gets a leading apostrophe (OWASP's advice against CSV injection)."""
    return "'" + text if isinstance(text, str) and text[:1] in FORMULA_STARTS else text


def csv_stream(chunks: Iterable[pd.DataFrame], columns: tuple[str, ...], lang: str,
               free_text: tuple[str, ...] = ()) -> Iterator[bytes]:
    """Yield a UTF-8 CSV (with its BOM, for Excel) chunk by chunk: the headings, then each frame's rows; the
    ``free_text`` columns (what publishers wrote) defused."""
    yield (BOM + pd.DataFrame(columns=headings(columns, lang)).to_csv(index=False, lineterminator="\r\n")).encode()
    for frame in chunks:
        for column in free_text:
            frame[column] = frame[column].map(defuse)
        yield frame.to_csv(index=False, header=False, lineterminator="\r\n").encode()


def write_xlsx(chunks: Iterable[pd.DataFrame], columns: tuple[str, ...], lang: str, path: str,
               sheet: str = "events") -> int:
    """Write the frames to an Excel workbook at ``path`` row by row in constant memory; return the rows written."""
    book = xlsxwriter.Workbook(path, {"constant_memory": True, "strings_to_formulas": False,
                                      "strings_to_urls": False})  # a title is text, never a formula or link
    try:
        sheet_ = book.add_worksheet(sheet)
        bold = book.add_format({"bold": True})
        sheet_.write_row(0, 0, headings(columns, lang), bold)
        n = 0
        for frame in chunks:
            for row in frame.itertuples(index=False, name=None):
                n += 1
                if n >= EXCEL_MAX_ROWS:
                    raise TooManyRows(f"an Excel sheet holds at most {EXCEL_MAX_ROWS - 1:,} rows")
                sheet_.write_row(n, 0, row)
    finally:
        book.close()
    return n
