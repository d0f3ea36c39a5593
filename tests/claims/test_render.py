"""The Claims section, in a terminal and on the page (dlrun/claims/render.py)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pandas as pd

from dlrun.claims.decide import MARKS, SKIPPED, Result
from dlrun.claims.render import claims_html, mark_html, marks_to_html

CLAIM = {"says": "zeros – stay at chance", "source": "the lecture", "metric": "test_acc"}
CLAIM |= {"of": {"init": "zeros"}, "near": 0.1, "tol": 0.05}
# Characters a browser draws from a colour-emoji font, or shows as a box without one
EMOJI = re.compile("[\u2600-\u27bf\u25d0\u2b00-\u2bff\U0001f000-\U0001faff\ufe0f]")


def every_verdict() -> list[Result]:
    return [Result(f"c{i}", CLAIM, verdict, "measured") for i, verdict in enumerate(MARKS)]


def test_the_page_draws_every_mark_as_svg_and_needs_no_emoji_font():
    page = claims_html(every_verdict())
    assert not EMOJI.search(page), EMOJI.search(page)
    for verdict in MARKS:
        assert page.count(f'aria-label="{verdict}"') == 2  # the tally and its claim's line
    assert "zeros – stay at chance" in page  # the claim's own words are left as they are
    assert EMOJI.search("".join(MARKS.values()))  # the terminal's marks would need one


def test_each_mark_is_well_formed_svg_with_its_verdict_as_its_name():
    for verdict in MARKS:
        svg = ET.fromstring(mark_html(verdict))
        assert svg.tag == "svg" and svg.get("aria-label") == verdict
        assert svg.find("title").text == verdict and len(svg) >= 2  # title and a shape


def test_a_table_of_marked_cells_gets_svg_marks_in_its_cells_only():
    frame = pd.DataFrame({"a": [f"{MARKS[v]} 0.5 (published 0.5)" for v in MARKS], "b": "x – y"})
    table = marks_to_html(frame.to_html(index=False))
    assert not EMOJI.search(table) and table.count("<svg") == len(MARKS)
    assert "x – y" in table and f'aria-label="{SKIPPED}"' in table


def test_a_finding_is_shown_beside_its_verdict_in_the_terminal_and_on_the_page():
    from rich.console import Console

    from dlrun.claims.decide import REFUTED
    from dlrun.claims.render import print_claims

    found = {**CLAIM, "finding": "here the gain is <larger> with more labels"}
    results = [Result("c", found, REFUTED, "measured"), Result("d", CLAIM, REFUTED, "measured")]
    console = Console(record=True, width=200)
    print_claims(results, console)
    text = console.export_text()
    assert text.count("finding:") == 1 and "finding: here the gain is <larger>" in text
    page = claims_html(results)
    assert page.count("finding:") == 1 and "here the gain is &lt;larger&gt;" in page
