"""The Claims section of a report: each claim's verdict, words, numbers and source, console and page.

Skipped claims (meant for the full size, at the quick size) are named in one
line; dlrun.report.published lays out the claims that quote a paper's table.
"""

from __future__ import annotations

import html

import pandas as pd

from dlrun.claims.decide import CONFIRMED, INCONCLUSIVE, MARKS, REFUTED, SKIPPED, UNMEASURED, Result
from dlrun.config import claims as form


def tally(results: list[Result]) -> str:
    """'5 confirmed, 1 not confirmed': the section's heading."""
    counts = pd.Series([r.verdict for r in results]).value_counts()
    order = [CONFIRMED, REFUTED, INCONCLUSIVE, UNMEASURED, SKIPPED]
    return ", ".join(f"{MARKS[v]} {counts[v]} {v}" for v in order if v in counts)


def print_claims(results: list[Result], console) -> None:
    if not results:
        return
    console.print(f"[bold]Claims[/] ({tally(results)})", soft_wrap=True)
    for result in results:
        if result.verdict != SKIPPED:
            console.print(f"  {result.line()}", markup=False, soft_wrap=True)
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
        f'<li class="claim"><b>{MARKS[r.verdict]} {html.escape(r.name)}</b>: {html.escape(r.claim["says"])}'
        + (
            f' <span class="meta">[{html.escape(r.claim["source"])}]</span>'
            if r.claim.get("source")
            else ""
        )
        + f"<br>{html.escape(r.measured)}; expected {html.escape(form.describe_bound(r.claim))}"
        f" → <b>{r.verdict}</b></li>"
        for r in results
        if r.verdict != SKIPPED
    )
    if skipped_line(results):
        items += f"\n<li>{html.escape(skipped_line(results))}</li>"
    return f'<h2>Claims</h2>\n<p class="meta">{html.escape(tally(results))}</p>\n<ul class="findings">\n{items}\n</ul>\n'
