"""Execute the notebooks in docs/notebooks/ and write each one, with its outputs, as an .ipynb file.

    make notebooks                       # full setting: docs/notebooks/NN_slug.ipynb, committed, what readers see
    QUICK=1 make notebooks               # short setting (as CI runs it): build/notebooks/NN_slug.ipynb
    python docs/run_notebooks.py [--quick] [docs/notebooks/01_plot_it_yourself.md ...]

Each notebook is a jupytext MyST file (`NN_slug.md`, readable diffs); this runs it top to bottom in a fresh
kernel (nbclient), in the notebook's folder, with QUICK set for the notebook to read
(`jaxmlp.show.notebook.QUICK`). A cell that raises stops that notebook and fails the command (exit 1), and in the
full setting leaves the committed .ipynb untouched. Every notebook's seconds go into its metadata
(`metadata.jaxmlp`) and into timings-{quick,full}.json in build/notebooks/ (or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "docs" / "notebooks"
BUILD = ROOT / "build" / "notebooks"


def sources() -> list[Path]:
    """Every notebook, in order: docs/notebooks/NN_slug.md."""
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.md"))


def executed_path(source: Path, quick: bool, out: Path | None = None) -> Path:
    """In `out` when given; else beside the source in the full setting (committed), build/notebooks/ in the quick."""
    return (out or (BUILD if quick else source.parent)) / (source.stem + ".ipynb")


def kernel_environment(quick: bool) -> None:
    """What the kernel inherits: QUICK, this checkout's jaxmlp first on the path, the inline figure backend."""
    os.environ["QUICK"] = "1" if quick else "0"
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"


def execute(source: Path, quick: bool, timeout: int, out: Path | None = None) -> float:
    """Run one notebook and write it with its outputs; returns its seconds. Raises CellExecutionError."""
    notebook = jupytext.read(source)
    client = NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(source.parent)}}
    )
    start = time.perf_counter()
    client.execute()
    seconds = round(time.perf_counter() - start, 1)
    notebook.metadata["jaxmlp"] = {"quick": quick, "seconds": seconds}
    target = executed_path(source, quick, out)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name("." + target.name + ".tmp")
    nbformat.write(notebook, tmp)
    tmp.replace(target)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path, help="MyST notebooks to run (default: all of them)")
    parser.add_argument(
        "--quick", action="store_true", default=os.environ.get("QUICK", "0") not in ("", "0"), help="short setting"
    )
    parser.add_argument("--out", type=Path, help="folder for the executed .ipynb (default: see above)")
    parser.add_argument("--timeout", type=int, default=900, help="seconds one cell may take (default 900)")
    args = parser.parse_args(argv)
    chosen = [p.resolve() for p in args.notebooks] or sources()
    missing = [str(p) for p in chosen if not p.is_file() or p.suffix != ".md"]
    if missing:
        print(
            f"error: not a MyST notebook: {', '.join(missing)}; pass files like docs/notebooks/01_*.md", file=sys.stderr
        )
        return 2
    kernel_environment(args.quick)
    timings = {}
    for source in chosen:
        print(f"{source.name} ({'quick' if args.quick else 'full'}) ...", flush=True)
        try:
            timings[source.name] = execute(source, args.quick, args.timeout, args.out)
        except CellExecutionError as e:
            print(f"error: {source.name} failed in a cell:\n{e}", file=sys.stderr)
            return 1
        print(f"{source.name}: {timings[source.name]} s -> {executed_path(source, args.quick, args.out)}")
    folder = args.out or BUILD
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / f"timings-{'quick' if args.quick else 'full'}.json"
    log.write_text(json.dumps(timings, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
