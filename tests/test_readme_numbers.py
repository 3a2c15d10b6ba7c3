"""The numbers benchmarks/README.md shows are the committed result files' numbers.

Each results folder under benchmarks/results/ holds the JSON a benchmark command wrote (the command is recorded
in it) and the markdown table rendered from it; benchmarks/README.md quotes those tables, and its summary ("Measured
here", which README.md links to) the blocks `python -m benchmarks.readme_tables` renders from them, and nothing else.
"""

import glob
import json
import os

from benchmarks.readme_tables import RESULTS, blocks
from benchmarks.throughput import markdown_table
from tests.helpers import ROOT


def read(path: str) -> str:
    with open(os.path.join(ROOT, path)) as f:
        return f.read()


def committed_tables() -> dict[str, str]:
    """Each committed results .md's body (from its first table row on), by folder, quick runs left out."""
    tables = {}
    for path in sorted(glob.glob(os.path.join(RESULTS, "*", "*.md"))):
        text = open(path).read()
        tables[os.path.relpath(path, RESULTS)] = text[text.index("\n|") + 1 :].strip()
    return tables


def test_summary_tables_are_rendered_from_the_committed_results():
    readme = read(os.path.join("benchmarks", "README.md"))
    for name, block in blocks().items():
        assert block in readme, f"benchmarks/README.md's {name} numbers differ from python -m benchmarks.readme_tables"


def test_readme_links_the_measured_numbers():
    assert "(benchmarks/README.md#measured-here)" in read("README.md")


def test_benchmarks_readme_shows_every_committed_table_as_committed():
    readme = read(os.path.join("benchmarks", "README.md"))
    tables = committed_tables()
    assert {"throughput/throughput.md", "scaling/scaling.md", "measured_here/measured_here.md"} <= set(tables)
    for name, table in tables.items():
        assert table in readme, f"benchmarks/README.md's table from results/{name} differs from the file"


def test_committed_throughput_tables_are_their_json_rendered():
    for path in glob.glob(os.path.join(RESULTS, "*", "throughput.json")):
        with open(path) as f:
            results = json.load(f)
        assert markdown_table(results).strip() in open(path[: -len("json")] + "md").read(), path
        assert results["command"].startswith("python -m benchmarks.throughput")
