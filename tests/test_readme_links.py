"""The learner's path is the README's first screen: within its first 30 lines `make lab` and a link to every
notebook in docs/notebooks/ (NN_slug.md), in order; docs/README.md links every notebook too; and every local link
in README.md and docs/README.md names a file that exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "docs" / "notebooks").glob("[0-9][0-9]_*.md"))
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")


def links(text: str) -> list[str]:
    """Every markdown link target, without its #anchor."""
    return LINK.findall(text)


def notebook_links(text: str, prefix: str) -> list[str]:
    """The notebooks `text` links (PREFIX/NN_slug.ipynb or .md), as stems, in the order of their first link."""
    stems = [Path(t).stem for t in links(text) if re.fullmatch(re.escape(prefix) + r"\d\d_\w+\.(ipynb|md)", t)]
    return list(dict.fromkeys(stems))


def test_there_are_notebooks():
    assert [p.stem for p in NOTEBOOKS][:1] == ["01_plot_it_yourself"]


def test_readme_first_screen_has_make_lab_and_every_notebook_in_order():
    first = "\n".join((ROOT / "README.md").read_text().splitlines()[:30])
    assert "make lab" in first
    assert notebook_links(first, "docs/notebooks/") == [p.stem for p in NOTEBOOKS]


def test_docs_readme_links_every_notebook_in_order():
    text = (ROOT / "docs" / "README.md").read_text()
    assert notebook_links(text, "notebooks/") == [p.stem for p in NOTEBOOKS]


def test_every_local_link_in_the_readmes_exists():
    for readme in (ROOT / "README.md", ROOT / "docs" / "README.md"):
        for target in links(readme.read_text()):
            if "://" not in target:
                assert (readme.parent / target).exists(), f"{readme.relative_to(ROOT)} links to missing {target}"
