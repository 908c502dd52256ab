"""The monthly compliance report as a PDF (fpdf2: pure Python, no system libraries).

Text is drawn in DejaVu Sans when the system has it (Debian's fonts-dejavu-core; ``$SANDBOXWATCH_PDF_FONT``
names another TrueType file), so Vietnamese clauses and messages print as written. Without a Unicode font
the PDF core font is used and text outside Latin-1 is folded to its base letters (Đ to D, ế to e); the
report says so on its first page rather than printing blanks."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path
from typing import Any

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from sandboxwatch.api.monthly_report import MonthlyReport

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
)
CASE_ROWS_MAX = 400  # the PDF lists this many cases; the CSV has them all


def _unicode_font() -> Path | None:
    chosen = os.environ.get("SANDBOXWATCH_PDF_FONT")
    for candidate in (chosen,) if chosen else FONT_CANDIDATES:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def _fold(text: str) -> str:
    """Latin-1 text for the core font: accents dropped, Đ/đ to D/d, anything else left as '?'."""
    text = text.replace("Đ", "D").replace("đ", "d")
    bare = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return bare.encode("latin-1", "replace").decode("latin-1")


class _Document(FPDF):
    def __init__(self, title: str) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.title_text = title
        font = _unicode_font()
        self.folded = font is None
        if font is not None:
            self.add_font("body", "", str(font))
            bold = font.with_name(font.stem + "-Bold" + font.suffix)
            self.add_font("body", "B", str(bold if bold.is_file() else font))
            self.family = "body"
        else:
            self.family = "helvetica"
        self.set_auto_page_break(True, margin=15)
        self.set_margins(15, 15, 15)

    def text_of(self, value: Any) -> str:
        text = "" if value is None else str(value)
        return _fold(text) if self.folded else text

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(self.family, "", 8)
        self.cell(0, 6, self.text_of(f"{self.title_text} · page {self.page_no()}/{{nb}}"), align="C")

    def heading(self, text: str) -> None:
        self.ln(3)
        self.set_font(self.family, "B", 13)
        self.cell(0, 8, self.text_of(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_font(self.family, "", 9)

    def line_of(self, text: str) -> None:
        self.multi_cell(0, 5, self.text_of(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def grid(self, header: tuple[str, ...], rows: list[tuple[Any, ...]], widths: tuple[int, ...]) -> None:
        self.set_font(self.family, "", 8)
        with self.table(col_widths=widths, text_align="LEFT", line_height=4.5, first_row_as_headings=True) as table:
            table.row([self.text_of(h) for h in header])
            for row in rows:
                table.row([self.text_of(v) for v in row])
        self.set_font(self.family, "", 9)


def report_pdf(report: MonthlyReport) -> bytes:
    title = f"sandboxwatch monthly compliance report: {report.participant}, {report.month}"
    pdf = _Document(title)
    pdf.set_title(pdf.text_of(title))
    pdf.add_page()
    pdf.set_font(pdf.family, "B", 16)
    pdf.multi_cell(0, 8, pdf.text_of(title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(pdf.family, "", 9)
    pdf.line_of(f"Period: {report.start.isoformat()} to {report.end.isoformat()} (event time, Vietnam time)")
    pdf.line_of(f"Licence: {report.licence or 'not in the store'}")
    pdf.line_of(f"Generated: {report.generated.isoformat()} from the sandboxwatch store")
    verdict = "no breach or critical finding" if report.compliant else "breach or critical findings recorded"
    pdf.line_of(f"Compliance: {verdict}")
    if pdf.folded:
        pdf.line_of("Note: no Unicode font was found; accented letters are printed without their accents.")
    for note in report.notes:
        pdf.line_of(f"Note: {note}")

    pdf.heading("Findings by rule")
    severities = ", ".join(f"{name} {count}" for name, count in report.by_severity.items())
    pdf.line_of(f"Findings by severity: {severities}")
    if report.rules:
        pdf.grid(("rule", "kind", "severity", "licence clause", "findings"),
                 [(r["rule"], r["kind"], r["severity"], r["clause"], r["findings"]) for r in report.rules],
                 (30, 36, 18, 80, 16))  # fmt: skip
    else:
        pdf.line_of("No findings this month.")

    pdf.heading("Cases and their resolution")
    states = ", ".join(f"{name} {count}" for name, count in report.by_state.items())
    resolutions = ", ".join(f"{name} {count}" for name, count in report.by_resolution.items())
    pdf.line_of(f"Cases by state: {states}. Resolved as: {resolutions}.")
    if report.cases:
        shown = report.cases[:CASE_ROWS_MAX]
        pdf.grid(("finding", "rule", "severity", "event time", "state", "resolution", "last change"),
                 [(c["finding_id"][:12], c["rule"], c["severity"], c["ts"][:19], c["state"], c["resolution"],
                   c["changed"]) for c in shown],
                 (24, 30, 18, 34, 24, 26, 24))  # fmt: skip
        if len(report.cases) > len(shown):
            pdf.line_of(f"{len(report.cases) - len(shown)} more cases are in the CSV report.")
    else:
        pdf.line_of("No cases this month.")

    pdf.heading("Utilisation peaks")
    if report.peaks:
        pdf.grid(("rule", "limit", "licence clause", "peak in use", "reached at (UTC)"),
                 [(p["rule"], p["limit"], p["clause"], f"{p['peak_share'] * 100:.1f}%", p["at"][:19])
                  for p in report.peaks],
                 (30, 36, 60, 20, 34))  # fmt: skip
    else:
        pdf.line_of("No participant-level limit was in use this month.")
    return bytes(pdf.output())
