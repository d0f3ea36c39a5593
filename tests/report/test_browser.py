"""The report as a reader sees it: index.html rendered by a headless Chromium (dlrun/report/html.py).

Skipped where no Chromium is installed (Debian: `apt-get install chromium`).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from dlrun.report.cli import main as report

from synthetic_runs import write_classification_run

CHROMIUM = (
    shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Appended to a copy of the page: after load, every <img> says whether it decoded.
CHECK = """<script>
window.addEventListener("load", () => {
  const images = [...document.images].map(img => ({
    figure: img.closest("figure") ? img.closest("figure").id : img.alt,
    loaded: img.complete && img.naturalWidth > 0,
    width: img.naturalWidth,
  }));
  const out = document.createElement("pre");
  out.id = "dlrun-check";
  out.textContent = JSON.stringify(images);
  document.body.appendChild(out);
});
</script>"""


def chromium(*args: str, profile) -> subprocess.CompletedProcess:
    command = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed")
def test_every_figure_of_the_page_loads_in_a_browser(tmp_path):
    sweep = tmp_path / "sweep"
    for i, (name, seed) in enumerate((n, s) for n in ("sgd", "momentum", "adam") for s in range(2)):
        write_classification_run(
            sweep / f"{i}_optimizer={name},seed={seed}",
            {"optimizer.name": name, "seed": seed},
            epochs=12,
            val_end={"sgd": 0.6, "momentum": 0.45, "adam": 0.3}[name],
            jitter=0.02,
            seed=seed,
        )
    assert report([str(sweep)]) == 0
    page = sweep / "report" / "index.html"
    html = page.read_text()
    figures = re.findall(r'<figure id="([^"]+)">', html)
    assert figures == ["curves", "gap", "sweep", "optimizers", "layers"]

    checked = page.with_name("check.html")
    checked.write_text(html.replace("</body>", CHECK + "</body>"))
    out = chromium(
        "--virtual-time-budget=10000", "--dump-dom", checked.as_uri(), profile=tmp_path / "p1"
    )
    found = re.search(r'<pre id="dlrun-check">(.*?)</pre>', out.stdout, re.S)
    assert found, out.stderr[-2000:]
    images = json.loads(found.group(1).replace("&quot;", '"'))
    assert [image["figure"] for image in images] == figures
    assert all(image["loaded"] and image["width"] > 500 for image in images), images

    shot = tmp_path / "report.png"
    chromium(
        "--window-size=1280,5200", f"--screenshot={shot}", page.as_uri(), profile=tmp_path / "p2"
    )
    assert shot.is_file() and shot.stat().st_size > 50_000  # a rendered page, not a blank one


MARKS_CHECK = """<script>
window.addEventListener("load", () => {
  const marks = [...document.querySelectorAll("svg.mark")].map(svg => {
    const box = svg.getBoundingClientRect();
    return {verdict: svg.getAttribute("aria-label"), width: box.width, height: box.height,
            line: parseFloat(getComputedStyle(svg.closest("li, p, td")).fontSize)};
  });
  const out = document.createElement("pre");
  out.id = "dlrun-marks";
  out.textContent = JSON.stringify(marks);
  document.body.appendChild(out);
});
</script>"""


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed")
def test_every_claim_mark_is_drawn_at_the_size_of_its_text(tmp_path):
    # the marks are inline SVG: drawn alike with or without a colour-emoji font
    from dlrun.claims.decide import MARKS, Result
    from dlrun.claims.render import claims_html

    claim = {"says": "x", "source": "s", "metric": "test_acc", "of": {"init": "zeros"}}
    results = [
        Result(f"c{i}", claim | {"near": 0.1, "tol": 0.05}, v, "m") for i, v in enumerate(MARKS)
    ]
    page = tmp_path / "marks.html"
    page.write_text(f"<!doctype html><html><body>{claims_html(results)}{MARKS_CHECK}</body></html>")
    out = chromium(
        "--virtual-time-budget=5000", "--dump-dom", page.as_uri(), profile=tmp_path / "p"
    )
    found = re.search(r'<pre id="dlrun-marks">(.*?)</pre>', out.stdout, re.S)
    assert found, out.stderr[-2000:]
    marks = json.loads(found.group(1).replace("&quot;", '"'))
    assert {m["verdict"] for m in marks} == set(MARKS) and len(marks) == 2 * len(MARKS)
    for mark in marks:  # 1em square: as tall as the text beside it
        assert mark["width"] == mark["height"] == pytest.approx(mark["line"], abs=0.5), mark
