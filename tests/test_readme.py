"""The README and docs/ stay true: the results table quotes only numbers its named source still has, every
relative link (and heading anchor) resolves, and the docs speak of the project, not of how the work was organised."""
import re
from pathlib import Path

import pytest

from src.common.paths import REPO_ROOT as ROOT

DOCS = sorted((ROOT / "docs").glob("*.md"))

NUMBER = re.compile(r"(?<![\w.])\d+\.\d+(?![\w.])")   # 0.457, 28.5: the figures a table quotes (not 2026-12-04)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
DATE = re.compile(r"\b20\d\d-\d\d-\d\d\b")
# Work-organisation words that must not reach the docs; legitimate uses ("a Colab session", "InferenceSession",
# "tissue", "stop at once") do not match.
DENYLIST = [re.compile(p, re.IGNORECASE) for p in (
    r"\bissues?\b",
    r"\b(this|that|next|later|second|previous|earlier|one|each|same|a) sessions?\b",
    r"\bover sessions\b",
    r"\bstop \d+\b",
    r"\bwork items?\b",
    r"\blent\b",
    r"\bthe brief\b",
    r"\bthis task\b",
)]


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def results_rows(readme: str) -> list[dict]:
    """Rows of the README's results table (the table under '## Results'), as {column header: cell}."""
    section = readme.split("## Results", 1)[1].split("\n## ", 1)[0]
    lines = [ln for ln in section.splitlines() if ln.startswith("|")]
    header = _cells(lines[0])
    return [dict(zip(header, _cells(ln), strict=True)) for ln in lines[2:]]


def stale_numbers(row: dict, root: Path) -> list[str]:
    """The numbers of a results row that its source file does not contain: every figure in the cells between the
    label (first column) and the machine/date and source columns (the last two)."""
    source = LINK.search(row["source"])
    if source is None or source.group(1).startswith("http"):
        return []
    text = (root / source.group(1)).read_text(encoding="utf-8")
    quoted = [n for cell in list(row.values())[1:-2] for n in NUMBER.findall(cell)]
    return [n for n in quoted if not re.search(rf"(?<![\w.]){re.escape(n)}(?![\w])", text)]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in _strip_code(path.read_text(encoding="utf-8")).splitlines():
        if m := re.match(r"#{1,6} (.+)", line):
            slug = _slug(m.group(1))
            out.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
            seen[slug] = seen.get(slug, 0) + 1
    return out


def _strip_code(text: str) -> str:
    return re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)


def broken_links(path: Path) -> list[str]:
    """Relative links of a markdown file whose target file (or heading anchor) does not exist."""
    bad = []
    for target in LINK.findall(_strip_code(path.read_text(encoding="utf-8"))):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        if not dest.exists():
            bad.append(target)
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(target)
    return bad


def denied_phrases(text: str) -> list[str]:
    return [m.group(0) for p in DENYLIST for m in p.finditer(text)]


def test_results_rows_quote_only_what_their_source_says():
    rows = results_rows((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(rows) >= 3
    for row in rows:
        assert LINK.search(row["source"]), f"results row without a linked source: {row}"
        assert DATE.search(row["machine, precision, date"]), f"results row without a date: {row}"
        assert not stale_numbers(row, ROOT), f"{row['configuration']!r} quotes numbers its source lacks"
    generated = [r for r in rows if re.search(r"docs/\w*_table\w*\.md", r["source"])]
    assert generated, "the headline rows come from a generated table"


def test_a_number_the_source_table_no_longer_has_is_reported(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "t_table.md").write_text("| plain | 3 | 0.453 ± 0.011 | 28.5 |\n", encoding="utf-8")
    readme = ("## Results\n| configuration | XQuAD-hi | train min | machine, precision, date | source |\n"
              "|---|---|---|---|---|\n"
              "| kept | 0.453 ± 0.011 | 28.5 | B, fp32, 2026-12-02 | [t](docs/t_table.md) |\n"
              "| stale | 0.457 ± 0.011 | 28.50 | B, fp32, 2026-12-02 | [t](docs/t_table.md) |\n"
              "\n## Next\n| not | 0.999 |\n")
    kept, stale = results_rows(readme)
    assert stale_numbers(kept, tmp_path) == []
    assert stale_numbers(stale, tmp_path) == ["0.457", "28.50"]   # 0.011 is still there


@pytest.mark.parametrize("path", [ROOT / "README.md", *DOCS], ids=lambda p: p.name)
def test_every_relative_link_resolves(path):
    assert not broken_links(path), f"{path.relative_to(ROOT)}: broken links"


def test_a_broken_link_or_anchor_is_reported(tmp_path):
    (tmp_path / "a.md").write_text("# Machines\n## The grid (`make ablate`, 2026-12-01)\n", encoding="utf-8")
    doc = tmp_path / "b.md"
    doc.write_text("[ok](a.md#machines) [ok](a.md#the-grid-make-ablate-2026-12-01) [web](https://x.org/y)\n"
                   "[gone](missing.md) [bad anchor](a.md#nowhere)\n```\n[in code](nothing.md)\n```\n",
                   encoding="utf-8")
    assert broken_links(doc) == ["missing.md", "a.md#nowhere"]


def test_docs_index_lists_every_doc():
    index = (ROOT / "docs" / "README.md").read_text(encoding="utf-8")
    linked = {Path(t.partition("#")[0]).name for t in LINK.findall(index)}
    assert not [p.name for p in DOCS if p.name != "README.md" and p.name not in linked]


@pytest.mark.parametrize("path", [ROOT / "README.md", *DOCS], ids=lambda p: p.name)
def test_docs_speak_of_the_project_only(path):
    assert not denied_phrases(path.read_text(encoding="utf-8")), path.name


def test_denylist_catches_work_organisation_and_spares_ordinary_words():
    assert denied_phrases("The grid (issue 11) ran over sessions; left for the next session; stop 2.") == [
        "issue", "next session", "over sessions", "stop 2"]
    assert denied_phrases("Restart the Colab session; an ORT InferenceSession; tissue; stops at once.") == []
