"""Helpers shared by several test modules: the repository root, `jaxmlp` in a subprocess, a process's signal
handlers, a small IDX dataset, two runs compared bitwise, an autograd graph's shape, the cells of an executed
notebook, and the modules a source file imports."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMING = {"seconds", "samples_per_second"}  # the metrics that differ between two runs of the same training


def jaxmlp(*args, cwd=None, timeout=180):
    """`python -m jaxmlp ARGS` from the repository root: the CompletedProcess, output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "jaxmlp", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": ROOT},
    )


def catches(pid, sig):
    """Whether process `pid` has a handler installed for `sig` (the SigCgt mask of /proc/PID/status)."""
    with open(f"/proc/{pid}/status") as f:
        mask = next(int(line.split()[1], 16) for line in f if line.startswith("SigCgt:"))
    return bool(mask >> (sig - 1) & 1)


def write_idx_dataset(folder, n_train=300, n_test=120, gz=True):
    """Real handwritten digits (scikit-learn's 8x8, scaled to 0..255) in LeCun's IDX layout."""
    import numpy as np

    from jaxmlp.data.datasets import load_digits
    from jaxmlp.data.idx import write_idx

    raw = load_digits()
    ext = ".gz" if gz else ""
    os.makedirs(folder, exist_ok=True)
    to_u8 = lambda x: np.minimum(x.astype(np.int32) * 16, 255).astype(np.uint8)
    write_idx(os.path.join(folder, "train-images-idx3-ubyte" + ext), to_u8(raw.x_train[:n_train]))
    write_idx(os.path.join(folder, "train-labels-idx1-ubyte" + ext), raw.y_train[:n_train].astype(np.uint8))
    write_idx(os.path.join(folder, "t10k-images-idx3-ubyte" + ext), to_u8(raw.x_test[:n_test]))
    write_idx(os.path.join(folder, "t10k-labels-idx1-ubyte" + ext), raw.y_test[:n_test].astype(np.uint8))
    return str(folder)


# --- runs -------------------------------------------------------------------------


def restored_state(run_dir):
    """(state, meta) of the run's newest checkpoint."""
    from jaxmlp.core.train import init
    from jaxmlp.data.datasets import load_dataset
    from jaxmlp.runs.lifecycle import RunDir, model_shape

    run = RunDir.open(str(run_dir))
    cfg = run.config()
    ds = load_dataset(cfg.dataset, cfg.data_dir, cfg.normalization)
    _, like = init(cfg, ds)
    try:
        return run.checkpointer().restore(like, model_shape(ds))
    finally:
        run.release()


def without_timings(rows):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def assert_same_run(a, b):
    """Metrics (but their timings), every step's log and every parameter equal, bitwise."""
    import jax
    import numpy as np

    from jaxmlp.runs.lifecycle import RunDir

    history_a, history_b = RunDir(str(a)).history, RunDir(str(b)).history
    assert without_timings(history_a.read_metrics()) == without_timings(history_b.read_metrics())
    steps_a, steps_b = history_a.read_steps(), history_b.read_steps()
    assert set(steps_a) == set(steps_b) == {"loss", "stats_step", "grad_norm", "update_ratio", "layers"}
    for k in steps_b:
        np.testing.assert_array_equal(steps_a[k], steps_b[k])
    for x, y in zip(jax.tree.leaves(restored_state(a)[0]), jax.tree.leaves(restored_state(b)[0])):
        np.testing.assert_array_equal(x, y)


# --- autograd graphs -------------------------------------------------------------


def structure(node, depth=0, out=None):
    """(depth, name) pairs of a tracer graph, following next_functions in order (small graphs only)."""
    out = [] if out is None else out
    out.append((depth, node.name() if node is not None else None))
    if node is not None:
        for child, _ in node.next_functions:
            structure(child, depth + 1, out)
    return out


# --- executed notebooks -------------------------------------------------------------


def executed_notebook(slug: str):
    """The committed executed twin `docs/notebooks/SLUG.ipynb`, as nbformat reads it."""
    import nbformat

    return nbformat.read(os.path.join(ROOT, "docs", "notebooks", f"{slug}.ipynb"), as_version=4)


def code(notebook) -> list:
    return [c for c in notebook.cells if c.cell_type == "code"]


def text(cell) -> str:
    """What a code cell printed (its stream outputs)."""
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def tags(cell) -> list:
    return cell.metadata.get("tags", [])


def assert_no_error_outputs(notebook) -> None:
    assert [o for c in code(notebook) for o in c.outputs if o.output_type == "error"] == []


def assert_predictions_reveal_nothing_until_asked(notebook) -> None:
    """Each `check(...)` cell printed only the no-prediction line; each `reveal()` cell's output is collapsed."""
    from jaxmlp.show.notebook import NO_PREDICTION

    for c in code(notebook):
        if "check(" in c.source:
            assert text(c).strip() == NO_PREDICTION  # not a word of the answer until reveal()
        if c.source.strip() == "reveal()":
            assert "hide-output" in tags(c) and c.metadata.get("jupyter", {}).get("outputs_hidden") is True


def module_references(
    source: str, strings: re.Pattern | None = None, package: tuple[str, ...] = ()
) -> list[tuple[int, str]]:
    """(line, dotted name) of every module or name that `source` imports, inside functions too, and, when `strings`
    is given, of every string constant that it matches: what `importlib.import_module` or `__import__` take (an
    f-string's literal head, `'pkg.'`, counts, its trailing dot dropped). Relative imports are resolved against
    `package`, the dotted path of the package that holds `source` (`("jaxmlp", "core")`)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            found += [(node.lineno, f"{module}.{a.name}") for a in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and strings and strings.match(node.value):
            found.append((node.lineno, node.value.rstrip(".")))
    return found


def function_lengths(root) -> dict[str, int]:
    """Lines of every function and method under the folder `root` (a pathlib.Path), keyed "file:line name"."""
    return {
        f"{path.relative_to(root)}:{node.lineno} {node.name}": node.end_lineno - node.lineno + 1
        for path in sorted(root.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    }
