"""The Claims section of a report: each claim's verdict, words, numbers and source, console and page.

Skipped claims (meant for the full size, at the quick size) are named in one
line; dlrun.report.published lays out the claims that quote a paper's table.
"""

from __future__ import annotations

import html

import pandas as pd

from dlrun.claims.decide import CONFIRMED, INCONCLUSIVE, MARKS, REFUTED, SKIPPED, UNMEASURED, Result
from dlrun.config import claims as form

# The page's marks: inline SVG, so they look the same in every browser, with or without
# a colour-emoji font (the terminal keeps decide.MARKS). Each carries its verdict as
# its accessible name and tooltip; 1em square, on the text's baseline.
_SVG = (
    '<svg class="mark" viewBox="0 0 16 16" width="1em" height="1em" role="img" '
    'aria-label="{verdict}" style="vertical-align:-0.15em"><title>{verdict}</title>{shape}</svg>'
)
_LINE = 'fill="none" stroke="#fff" stroke-width="2.2" stroke-linecap="round"'
_SHAPES = {
    CONFIRMED: f'<circle cx="8" cy="8" r="8" fill="#1a7f37"/><path d="M4.4 8.4l2.5 2.5 4.8-5.3" {_LINE} stroke-linejoin="round"/>',
    REFUTED: f'<circle cx="8" cy="8" r="8" fill="#cf222e"/><path d="M5 5l6 6M11 5l-6 6" {_LINE}/>',
    INCONCLUSIVE: '<circle cx="8" cy="8" r="7" fill="#fff" stroke="#6e7781" stroke-width="2"/><path d="M8 1a7 7 0 0 0 0 14z" fill="#6e7781"/>',
    UNMEASURED: '<path d="M8 1L15.5 14.5H0.5z" fill="#bf8700"/><path d="M8 6v4M8 12.2v0.1" fill="none" stroke="#fff" stroke-width="2" stroke-linecap="round"/>',
    SKIPPED: '<circle cx="8" cy="8" r="7" fill="none" stroke="#8c959f" stroke-width="2"/><path d="M4.5 8h7" fill="none" stroke="#8c959f" stroke-width="2" stroke-linecap="round"/>',
}


def mark_html(verdict: str) -> str:
    """The verdict's mark for a web page: an inline SVG any browser draws without special fonts."""
    return _SVG.format(verdict=html.escape(verdict), shape=_SHAPES[verdict])


def marks_to_html(table: str) -> str:
    """An HTML table whose cells open with a terminal mark (decide.MARKS), with SVG marks."""
    for verdict, mark in MARKS.items():
        table = table.replace(f"<td>{mark} ", f"<td>{mark_html(verdict)} ")
    return table


def tally(results: list[Result], marks=MARKS.get) -> str:
    """'5 confirmed, 1 not confirmed': the section's heading (`marks`: verdict -> its mark)."""
    counts = pd.Series([r.verdict for r in results]).value_counts()
    order = [CONFIRMED, REFUTED, INCONCLUSIVE, UNMEASURED, SKIPPED]
    return ", ".join(f"{marks(v)} {counts[v]} {v}" for v in order if v in counts)


def print_claims(results: list[Result], console) -> None:
    if not results:
        return
    console.print(f"[bold]Claims[/] ({tally(results)})", soft_wrap=True)
    for result in results:
        if result.verdict != SKIPPED:
            console.print(f"  {result.line()}", markup=False, soft_wrap=True)
            if result.claim.get("finding"):
                console.print(
                    f"     finding: {result.claim['finding']}", markup=False, soft_wrap=True
                )
    skipped = skipped_line(results)
    if skipped:
        console.print(f"  {skipped}", markup=False, soft_wrap=True)


def skipped_line(results: list[Result]) -> str:
    """The claims left to the full size, in one line (the quick size cannot show them)."""
    names = [r.name for r in results if r.verdict == SKIPPED]
    return f"{MARKS[SKIPPED]} checked at the full size only: {', '.join(names)}" if names else ""


def claims_html(results: list[Result]) -> str:
    """The page's Claims section (empty when the runs carry no claims)."""
    if not results:
        return ""
    items = "\n".join(
        f'<li class="claim"><b>{mark_html(r.verdict)} {html.escape(r.name)}</b>: {html.escape(r.claim["says"])}'
        + (
            f' <span class="meta">[{html.escape(r.claim["source"])}]</span>'
            if r.claim.get("source")
            else ""
        )
        + f"<br>{html.escape(r.measured)}; expected {html.escape(form.describe_bound(r.claim))}"
        f" → <b>{r.verdict}</b>"
        + (
            f"<br><i>finding: {html.escape(r.claim['finding'])}</i>"
            if r.claim.get("finding")
            else ""
        )
        + "</li>"
        for r in results
        if r.verdict != SKIPPED
    )
    skipped = [r.name for r in results if r.verdict == SKIPPED]
    if skipped:
        names = html.escape(", ".join(skipped))
        items += f"\n<li>{mark_html(SKIPPED)} checked at the full size only: {names}</li>"
    counts = tally(results, mark_html)
    return f'<h2>Claims</h2>\n<p class="meta">{counts}</p>\n<ul class="findings">\n{items}\n</ul>\n'
