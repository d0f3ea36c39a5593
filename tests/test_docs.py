"""The README and docs/ as a clone has them: every link lands inside the clone.

And docs/lecture-map.md names only experiments and claims that exist, and every
experiment of the library.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# [text](target) and ![alt](target); a target ends at whitespace or ')'
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)
CODE = re.compile(r"`[^`\n]*`")


def links(text: str) -> list[str]:
    """The link targets of a markdown text, outside code blocks and code spans."""
    return LINK.findall(CODE.sub("", FENCE.sub("", text)))


def anchors(page: Path) -> set[str]:
    """GitHub's anchor for each heading: lower case, punctuation dropped, spaces to '-'."""
    found = set()
    for line in FENCE.sub("", page.read_text(encoding="utf-8")).splitlines():
        if m := re.match(r"#{1,6}\s+(.*)", line):
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower().replace("`", ""))
            found.add(slug.replace(" ", "-"))
    return found


def broken(page: Path, target: str) -> str | None:
    """Why a link of this page does not resolve inside the clone, or None."""
    if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
        return None
    path, _, anchor = target.partition("#")
    dest = (page.parent / path).resolve() if path else page
    if not dest.is_relative_to(ROOT):
        return f"{target} leaves the repository"
    if not dest.exists():
        return f"{target}: no such file"
    if anchor and dest.suffix == ".md" and anchor not in anchors(dest):
        return f"{target}: no heading #{anchor} in {dest.name}"
    return None


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_resolves_inside_the_clone(page):
    targets = links(page.read_text(encoding="utf-8"))
    problems = [why for t in targets if (why := broken(page, t))]
    assert not problems


def test_the_link_check_sees_broken_links():
    # The check above must be able to fail: the README's old lecture link, a
    # missing file, a missing heading; a good link, a web link, a link in code.
    text = (
        "[l](../../shared/seed/lecture.txt) [m](nothing.md) [r](run-folder.md#nowhere)"
        " [ok](claims.md) [a](run-folder.md#resume) [w](https://example.org/x) `[c](x.md)`"
    )
    page = ROOT / "docs" / "a-page.md"
    found = {t: broken(page, t) for t in links(text)}
    assert [t for t, why in found.items() if why] == [
        "../../shared/seed/lecture.txt",
        "nothing.md",
        "run-folder.md#nowhere",
    ]
    assert "leaves the repository" in found["../../shared/seed/lecture.txt"]


def experiment_claims() -> dict[str, set[str]]:
    out = {}
    for path in sorted((ROOT / "experiments").glob("[!_]*.yaml")):
        out[path.stem] = set((yaml.safe_load(path.read_text()) or {}).get("claims") or {})
    return out


def test_the_lecture_map_names_real_claims_and_every_experiment():
    text = (ROOT / "docs" / "lecture-map.md").read_text(encoding="utf-8")
    claims = experiment_claims()
    named = set(re.findall(r"`([a-z0-9_]+)`", text))
    assert set(claims) <= named, set(claims) - named  # no experiment left out
    every_claim = set().union(*claims.values())
    rows = re.findall(r"^\|.*$", text, re.M)
    # a row that names an experiment names claims that exist (a misspelt or
    # renamed claim shows up here as an unknown snake_case name)
    for row in (r for r in rows if any(f"`{e}`" in r for e in claims)):
        for name in re.findall(r"`([a-z0-9]+(?:_[a-z0-9]+)+)`", row):
            assert name in claims or name in every_claim, name
    # and every claim of an experiment the map names appears in that experiment's row
    for experiment, names in claims.items():
        own = [r for r in rows if f"`{experiment}`" in r]
        mentioned = {n for r in own for n in re.findall(r"`([a-z0-9_]+)`", r)}
        assert names <= mentioned, (experiment, names - mentioned)
