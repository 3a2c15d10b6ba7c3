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


def test_the_jaxmlp_train_table_shows_the_commands_loop_beside_the_scan_of_the_same_run():
    from benchmarks.readme_tables import cli_summary
    from benchmarks.throughput import add_ratios

    speeds = {("jaxmlp-scan", 64): 200e3, ("jaxmlp-cli", 64): 180_999.0, ("torch-eager", 64): 50e3}
    speeds.update({("jaxmlp-scan", 512): 300e3, ("jaxmlp-cli", 512): 269_999.0})  # no eager row at 512
    rows = [{"system": s, "batch": b, "mlp": "784-128-64-10", "samples_per_s": v} for (s, b), v in speeds.items()]
    rows.append({"system": "jaxmlp-cli", "batch": 64, "mlp": "784-1024-1024-10", "samples_per_s": 1.0})
    add_ratios(rows, {})
    lines = cli_summary({"rows": rows}).splitlines()
    assert lines[0].startswith("| batch | `jaxmlp train` | jaxmlp, epoch in one scan | `jaxmlp train` ÷ scan |")
    # 0.904995 and 0.899997 shown rounded down: a ratio is never printed above what was measured
    assert lines[2] == "| 64 | 180,999/s | 200,000/s | 0.904 | 50,000/s | 3.619x |"
    assert lines[3] == "| 512 | 269,999/s | 300,000/s | 0.899 | — | — |"
    assert len(lines) == 4


def test_the_seed_comparison_sentence_is_its_result_file():
    from benchmarks.readme_tables import seed_summary

    results = {
        "command": "python -m benchmarks.cli_vs_seed --data-dir /data/fashion",
        "data_dir": "/data/fashion",
        "batch": 64,
        "epochs": 5,
        "rounds": 2,
        "ratio": 150_000 / 49_999,
        "rows": [
            {"system": "seed PyTorch loop", "samples_per_s": 49_999.0},
            {"system": "jaxmlp train", "samples_per_s": 150_000.0},
        ],
    }
    text = seed_summary(results)
    assert "(/data/fashion), batch 64, 5 epochs each, best of 2 rounds, median of epochs 2–5" in text
    assert "(`python -m benchmarks.cli_vs_seed --data-dir /data/fashion`, results in" in text
    assert text.endswith(": 150,000 against 49,999 samples/s, 3.000x.")  # 3.00006 rounded down
