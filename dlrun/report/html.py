"""index.html: one self-contained page (figures embedded as base64) that can be mailed or archived.

Order: claims (dlrun.claims.decide), findings, the summary table, the figures, then every run. PNG is always
embedded because browsers cannot show a PDF in an <img>; SVG is embedded as is.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

STYLE = """
body { font-family: system-ui, -apple-system, Segoe UI, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
.meta { color: #666; font-size: 0.9em; }
ul.findings li { margin: 0.35em 0; line-height: 1.4; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; white-space: nowrap; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #444; font-size: 0.9em; margin-top: 0.3em; }
.scroll { overflow-x: auto; }
"""


@dataclass
class Figure:
    """A rendered figure for the page: its name, caption and image bytes."""

    name: str
    caption: str
    image: bytes
    mime: str  # image/png or image/svg+xml


def data_uri(figure: Figure) -> str:
    return f"data:{figure.mime};base64,{base64.b64encode(figure.image).decode('ascii')}"


def table_html(frame: pd.DataFrame, max_rows: int | None = None) -> str:
    shown = frame if max_rows is None else frame.head(max_rows)
    text = shown.to_html(
        index=False, na_rep="", float_format=lambda v: f"{v:.4g}", border=0, escape=True
    )
    return f'<div class="scroll">{text}</div>'


def page(
    title: str,
    sources: list[str],
    findings: list[str],
    summary: pd.DataFrame,
    figures: list[Figure],
    runs: pd.DataFrame,
    claims: str = "",
    notes: list[str] | None = None,
) -> str:
    """The whole page as one string; `notes` say which figures were left out, and why."""
    items = "\n".join(f"<li>{html.escape(sentence)}</li>" for sentence in findings)
    shown = "\n".join(
        f'<figure id="{f.name}"><img src="{data_uri(f)}" alt="{html.escape(f.caption)}"><figcaption>{html.escape(f.caption)}</figcaption></figure>'
        for f in figures
    )
    shown += "".join(f'\n<p class="meta">{html.escape(note)}</p>' for note in notes or [])
    run_columns = [c for c in runs.columns if c != "path"]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{STYLE}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p class="meta">{len(runs)} runs from {html.escape(", ".join(sources))}; made {datetime.now():%Y-%m-%d %H:%M} by dlrun report. Every run: <a href="runs.csv">runs.csv</a>.</p>
{claims}<h2>Findings</h2>
<ul class="findings">
{items}
</ul>
<h2>Summary</h2>
{table_html(summary)}
<h2>Figures</h2>
{shown or "<p>No figures: no run finished normally.</p>"}
<h2>Runs</h2>
<details><summary>all {len(runs)} runs, best first</summary>
{table_html(runs[run_columns])}
</details>
</body></html>
"""
