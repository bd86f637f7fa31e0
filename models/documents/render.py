"""Documents as bytes: PDF through fpdf2, CSV through the standard library.

fpdf2 because it is pure Python (a wheel everywhere, no system Pango/Cairo as WeasyPrint needs,
no template language as typst brings), draws tables with right-aligned numbers and renders a
statement in milliseconds. Its core fonts (Helvetica) are Latin-1: other characters are
replaced, never an error. Numbers are printed exactly as computed (Decimal → text, cash to the
currency's minor unit), so the PDF text and the CSV carry the same figures.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from decimal import Decimal
from typing import cast

from fpdf import FPDF

from bourse.money import plain
from models.documents.statement import StatementData
from models.documents.tax import TaxData

BROKER = "Bourse Securities (sandbox) - member of no exchange; a demonstration platform"


def _text(value: str) -> str:
    return value.encode("latin-1", "replace").decode("latin-1")


def money(value: Decimal | None) -> str:
    return "" if value is None else f"{value:f}"


def qty(value: Decimal | None) -> str:
    return "" if value is None else f"{plain(value):f}"


class _Pdf(FPDF):
    def __init__(self, title: str) -> None:
        super().__init__(orientation="P", unit="mm", format="Letter")
        self.doc_title = title
        self.set_auto_page_break(auto=True, margin=15)
        self.set_title(title)
        self.set_author("Bourse")
        self.set_creator("Bourse (fpdf2)")

    def header(self) -> None:
        self.set_font("Helvetica", "B", 13)
        self.cell(0, 7, _text(self.doc_title), new_x="LMARGIN", new_y="NEXT")
        self.set_font("Helvetica", "", 7)
        self.cell(0, 4, _text(BROKER), new_x="LMARGIN", new_y="NEXT")
        self.ln(2)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("Helvetica", "", 7)
        self.cell(0, 5, f"Page {self.page_no()}/{{nb}}", align="C")

    def heading(self, text: str) -> None:
        self.ln(2)
        self.set_font("Helvetica", "B", 10)
        self.cell(0, 6, _text(text), new_x="LMARGIN", new_y="NEXT")

    def line_of(self, text: str) -> None:
        self.set_font("Helvetica", "", 9)
        self.cell(0, 5, _text(text), new_x="LMARGIN", new_y="NEXT")

    def grid(
        self,
        headings: Sequence[str],
        rows: Sequence[Sequence[str]],
        widths: Sequence[int],
        *,
        text_columns: int = 1,
    ) -> None:
        """A table of single-line cells (the first `text_columns` left, numbers right), its headings
        repeated on every page it runs onto; a value wider than its column is shortened with
        "..." (the CSV carries it whole).

        Drawn with fpdf2's primitives (a rectangle and a text run per cell, widths from the
        core font's metrics) rather than ``cell()``, which lays out every call as styled
        fragments: 69 µs a cell against about 10 µs, and rows are most of a statement (the
        statements bench). ``table()`` was slower still."""
        self._row(headings, widths, text_columns, bold=True)
        for r in rows:
            if self.will_page_break(_LINE):
                self.add_page()
                self._row(headings, widths, text_columns, bold=True)
            self._row(r, widths, text_columns, bold=False)

    def _row(
        self, values: Sequence[str], widths: Sequence[int], text_columns: int, *, bold: bool
    ) -> None:
        self.set_font("Helvetica", "B" if bold else "", 8)
        x, y = self.l_margin, self.y
        pad = self.c_margin
        baseline = y + 0.5 * _LINE + 0.3 * self.font_size
        for i, (value, width) in enumerate(zip(values, widths, strict=True)):
            text = self._fit(_text(value), width - 2)
            self.rect(x, y, width, _LINE)
            if text:
                left = x + pad if i < text_columns else x + width - pad - self._width(text)
                self.text(left, baseline, text)
            x += width
        self.ln(_LINE)

    def _width(self, text: str) -> float:
        """The width of Latin-1 ``text`` in the current core font (its metrics table, as
        ``get_string_width`` computes it, without the text shaping around it)."""
        # Only core fonts are used here: their table maps characters (a TTF's maps code points).
        font = self.current_font
        assert font is not None  # set_font ran
        metrics = cast("dict[str, float]", font.cw)
        return sum(metrics[c] for c in text) * self.font_size / 1000

    def _fit(self, text: str, width: float) -> str:
        if self._width(text) <= width:
            return text
        while text and self._width(text + "...") > width:
            text = text[:-1]
        return text + "..."


_LINE = 4.5


def statement_pdf(data: StatementData) -> bytes:
    pdf = _Pdf("Account statement")
    pdf.add_page()
    pdf.line_of(f"Account holder: {data.username} <{data.email}>")
    pdf.line_of(f"Account number: {data.user_id}")
    pdf.line_of(f"Period: {data.period_start} to {data.period_end} (UTC)")
    pdf.line_of(f"Generated: {data.generated_at:%Y-%m-%d %H:%M} UTC")

    pdf.heading("Summary")
    rows = [
        [f"Cash {ccy}", money(data.opening_cash.get(ccy)), money(data.closing_cash.get(ccy))]
        for ccy in sorted({*data.opening_cash, *data.closing_cash})
    ]
    rows.append(["Market value of positions", "", money(data.market_value)])
    rows.append(["Realized P&L (period)", "", money(data.realized_pnl)])
    rows.append(["Unrealized P&L (period end)", "", money(data.unrealized_pnl)])
    rows.append(["Fees", "", money(data.fees)])
    pdf.grid(["Item", "Opening", "Closing"], rows, [90, 50, 50])

    pdf.heading("Positions")
    if data.holdings:
        pdf.grid(
            [
                "Asset",
                "Opening qty",
                "Closing qty",
                "Price",
                "Market value",
                "Cost basis",
                "Unrealized",
                "Realized",
            ],
            [
                [
                    h.asset_id,
                    qty(h.opening_quantity),
                    qty(h.closing_quantity),
                    qty(h.price),
                    money(h.market_value),
                    money(h.cost_basis),
                    money(h.unrealized_pnl),
                    money(h.realized_pnl),
                ]
                for h in data.holdings
            ],
            [22, 24, 24, 22, 26, 26, 24, 22],
        )
    else:
        pdf.line_of("No positions.")

    pdf.heading("Activity")
    if data.activity:
        pdf.grid(
            ["Date", "Type", "Description", "Quantity", "Price", "Amount"],
            [
                [
                    f"{a.at:%Y-%m-%d %H:%M}",
                    a.kind,
                    a.description,
                    qty(a.quantity),
                    qty(a.price),
                    money(a.amount),
                ]
                for a in data.activity
            ],
            [30, 24, 70, 24, 22, 26],
            text_columns=3,
        )
    else:
        pdf.line_of("No activity in this period.")
    pdf.ln(3)
    pdf.set_font("Helvetica", "", 7)
    pdf.multi_cell(
        0,
        3.5,
        "Figures come from the account's ledger and tax lots. Cash is shown in the currency's "
        "minor unit; quantities exactly. Market values use the last price before the period end.",
    )
    return bytes(pdf.output())


def statement_csv(data: StatementData) -> bytes:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(
        [
            "section",
            "date",
            "type",
            "description",
            "asset",
            "quantity",
            "price",
            "amount",
            "currency",
        ]
    )
    w.writerow(["period", data.period_start, "", "start", "", "", "", "", ""])
    w.writerow(["period", data.period_end, "", "end", "", "", "", "", ""])
    for ccy, value in sorted(data.opening_cash.items()):
        w.writerow(
            ["cash", data.period_start, "OPENING", "opening cash", "", "", "", money(value), ccy]
        )
    for ccy, value in sorted(data.closing_cash.items()):
        w.writerow(
            ["cash", data.period_end, "CLOSING", "closing cash", "", "", "", money(value), ccy]
        )
    for h in data.holdings:
        w.writerow(
            [
                "position",
                data.period_start,
                "OPENING",
                h.name,
                h.asset_id,
                qty(h.opening_quantity),
                "",
                "",
                h.currency,
            ]
        )
        w.writerow(
            [
                "position",
                data.period_end,
                "CLOSING",
                h.name,
                h.asset_id,
                qty(h.closing_quantity),
                qty(h.price),
                money(h.market_value),
                h.currency,
            ]
        )
        w.writerow(
            [
                "cost_basis",
                data.period_end,
                "",
                "",
                h.asset_id,
                "",
                "",
                money(h.cost_basis),
                h.currency,
            ]
        )
        w.writerow(
            [
                "unrealized_pnl",
                data.period_end,
                "",
                "",
                h.asset_id,
                "",
                "",
                money(h.unrealized_pnl),
                h.currency,
            ]
        )
        w.writerow(
            [
                "realized_pnl",
                data.period_end,
                "",
                "",
                h.asset_id,
                "",
                "",
                money(h.realized_pnl),
                h.currency,
            ]
        )
    for a in data.activity:
        w.writerow(
            [
                "activity",
                a.at.isoformat(),
                a.kind,
                a.description,
                a.asset_id or "",
                qty(a.quantity),
                qty(a.price),
                money(a.amount),
                a.currency,
            ]
        )
    w.writerow(
        ["fees", data.period_end, "FEE", "commissions and fees", "", "", "", money(data.fees), ""]
    )
    return out.getvalue().encode()


TAX_HEADINGS = ["description", "quantity", "date_acquired", "date_sold", "proceeds",
                "cost_basis", "wash_sale_loss_disallowed", "gain_or_loss", "term"]  # fmt: skip


def tax_pdf(data: TaxData, *, corrected: bool) -> bytes:
    pdf = _Pdf(f"{data.year} Consolidated Form 1099" + (" - CORRECTED" if corrected else ""))
    pdf.add_page()
    pdf.line_of(f"Recipient: {data.username} <{data.email}>")
    pdf.line_of(f"Account number: {data.user_id}")
    pdf.line_of(f"Generated: {data.generated_at:%Y-%m-%d %H:%M} UTC")
    pdf.heading("Form 1099-DIV: dividends and distributions")
    if data.dividends:
        for ccy, total in sorted(data.dividends.items()):
            pdf.line_of(f"Box 1a Total ordinary dividends: {money(total)} {ccy}")
    else:
        pdf.line_of("Box 1a Total ordinary dividends: 0.00")
    pdf.line_of("Box 1b Qualified dividends: 0.00")
    pdf.heading("Form 1099-INT: interest income")
    pdf.line_of(f"Box 1 Interest income: {money(data.interest)} (not issued: no interest paid)")
    pdf.heading("Form 1099-B: proceeds from broker transactions (covered, FIFO lots)")
    if data.rows:
        pdf.grid(
            [
                "Description",
                "Acquired",
                "Sold",
                "Proceeds",
                "Cost basis",
                "Wash sale (1g)",
                "Gain/loss",
                "Term",
            ],
            [
                [
                    r.description,
                    str(r.acquired),
                    str(r.sold),
                    money(r.proceeds),
                    money(r.cost_basis),
                    money(r.wash_sale_disallowed),
                    money(r.gain),
                    r.term,
                ]
                for r in data.rows
            ],
            [46, 22, 22, 22, 22, 22, 22, 12],
            text_columns=3,
        )
        total = sum((r.gain for r in data.rows), Decimal(0))
        pdf.line_of(f"Total gain or loss: {money(total)}")
    else:
        pdf.line_of("No sales in this year.")
    return bytes(pdf.output())


def tax_csv(data: TaxData, *, corrected: bool) -> bytes:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["form", *TAX_HEADINGS, "currency", "corrected"])
    flag = "CORRECTED" if corrected else ""
    for r in data.rows:
        w.writerow(["1099-B", r.description, qty(r.quantity), r.acquired, r.sold,
                    money(r.proceeds), money(r.cost_basis), money(r.wash_sale_disallowed),
                    money(r.gain), r.term, "", flag])  # fmt: skip
    for ccy, total in sorted(data.dividends.items()):
        w.writerow(["1099-DIV", "1a total ordinary dividends", "", "", "", money(total), "", "",
                    "", "", ccy, flag])  # fmt: skip
    w.writerow(["1099-INT", "1 interest income", "", "", "", money(data.interest), "", "", "",
                "", "", flag])  # fmt: skip
    return out.getvalue().encode()
