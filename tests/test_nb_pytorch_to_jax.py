"""Notebook 02 ("Your PyTorch notebook, rebuilt in JAX") meets its bars, read off its committed, executed twin:
three or more write-it exercises with hidden, passing solutions; the parity assertion ran and printed a largest
loss difference of at most 1e-5; the speed table holds the four systems; no cell errored; no answer shows.

Each bar is a function returning what is wrong with a notebook, so the tests below also check that a notebook
doctored to break the bar is caught."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat
import pytest

import jaxmlp.core.train
from jaxmlp.show.notebook import NO_PREDICTION

NOTEBOOK = Path(__file__).resolve().parent.parent / "docs" / "notebooks" / "02_pytorch_to_jax.ipynb"
SYSTEMS = ("PyTorch eager", "JAX step, no jit", "JAX jitted step", "JAX scanned epoch")
PARITY_ASSERT = "assert max_delta <= 1e-5"
PARITY_LINE = re.compile(r"parity: max \|Δloss\| = ([0-9.eE+-]+) <= 1e-5 over 100 Adam steps")


def code_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def tags(cell) -> list[str]:
    return cell.metadata.get("tags", [])


def exercise_problems(nb) -> list[str]:
    """At least 3 `exercise(` check cells, each with a stub, a collapsed solution that passed, no answer shown."""
    cells = code_cells(nb)
    checks = [c for c in cells if re.search(r"^exercise\(", c.source, re.M)]
    problems = [] if len(checks) >= 3 else [f"{len(checks)} exercise() cells, want >= 3"]
    for check in checks:
        name = re.search(r"^exercise\((\w+),", check.source, re.M).group(1)
        stub = [c for c in cells if c.source.startswith(f"def {name}(") and "NotImplementedError" in c.source]
        solution = [c for c in cells if c.source.startswith(f"def {name}_solution(")]
        if not stub:
            problems.append(f"{name}: no stub raising NotImplementedError")
        if not solution or "hide-input" not in tags(solution[0]):
            problems.append(f"{name}: no solution cell tagged hide-input")
        elif not solution[0].metadata.get("jupyter", {}).get("source_hidden"):
            problems.append(f"{name}: solution source not hidden")
        if "Not written yet" not in text(check):  # exercise() ran test(solution) first; it passed, then the stub
            problems.append(f"{name}: check cell did not end at the stub: {text(check)!r}")
    return problems


def parity_problems(nb) -> list[str]:
    """The assertion cell exists, ran, and printed a largest |Δloss| of at most 1e-5."""
    cells = [c for c in code_cells(nb) if PARITY_ASSERT in c.source]
    if len(cells) != 1:
        return [f"{len(cells)} cells assert parity, want 1"]
    found = PARITY_LINE.search(text(cells[0]))
    if found is None:
        return [f"the parity cell printed no parity line (was torch installed?): {text(cells[0])!r}"]
    delta = float(found.group(1))
    return [] if delta <= 1e-5 else [f"max |Δloss| {delta} > 1e-5"]


def speed_problems(nb) -> list[str]:
    """One cell prints the table with a positive samples/s for each of the four systems, and the load."""
    outputs = [text(c) for c in code_cells(nb) if "| system | samples/s |" in text(c)]
    if len(outputs) != 1:
        return [f"{len(outputs)} speed tables, want 1"]
    problems = [] if "load average" in outputs[0] else ["the speed table does not name the load average"]
    for system in SYSTEMS:
        row = re.search(rf"^\| {re.escape(system)} \| ([0-9,]+) \|", outputs[0], re.M)
        if row is None or float(row.group(1).replace(",", "")) <= 0:
            problems.append(f"no samples/s for {system}")
    return problems


def hygiene_problems(nb) -> list[str]:
    """No error output; every check cell printed no answer; every reveal() cell collapsed."""
    cells = code_cells(nb)
    problems = [f"error output: {o.ename}" for c in cells for o in c.outputs if o.output_type == "error"]
    problems += [
        f"check cell shows an answer: {text(c)[:80]!r}"
        for c in cells
        if re.search(r"^\s*check\(", c.source, re.M) and NO_PREDICTION not in text(c)
    ]
    problems += [
        "reveal() cell not collapsed"
        for c in cells
        if c.source.strip() == "reveal()"
        and not ("hide-output" in tags(c) and c.metadata.get("jupyter", {}).get("outputs_hidden"))
    ]
    return problems


BARS = {"exercises": exercise_problems, "parity": parity_problems, "speed": speed_problems, "hygiene": hygiene_problems}


@pytest.fixture(scope="module")
def notebook():
    return nbformat.read(NOTEBOOK, as_version=4)


@pytest.mark.parametrize("bar", BARS)
def test_the_executed_notebook_meets_the_bar(notebook, bar):
    assert BARS[bar](notebook) == []


def cell_with(nb, needle: str):
    return next(c for c in code_cells(nb) if needle in c.source)


def set_text(cell, old: str, new: str) -> None:
    for o in cell.outputs:
        if o.output_type == "stream":
            o.text = o.text.replace(old, new)


def test_a_notebook_that_misses_each_bar_is_caught(notebook):
    """Break each bar in a copy of the notebook: the bar's check reports it."""
    nb = copy.deepcopy(notebook)
    parity = cell_with(nb, PARITY_ASSERT)
    set_text(parity, PARITY_LINE.search(text(parity)).group(1), "2.00e-05")
    assert parity_problems(nb) == ["max |Δloss| 2e-05 > 1e-5"]
    parity.outputs = []
    assert "printed no parity line" in parity_problems(nb)[0]

    nb = copy.deepcopy(notebook)
    table = next(c for c in code_cells(nb) if "| system | samples/s |" in text(c))
    set_text(table, "| JAX scanned epoch |", "| something else |")
    assert speed_problems(nb) == ["no samples/s for JAX scanned epoch"]

    nb = copy.deepcopy(notebook)
    solution = cell_with(nb, "def eval_step_solution(")
    solution.metadata["tags"] = []
    assert exercise_problems(nb) == ["eval_step: no solution cell tagged hide-input"]
    nb.cells = [c for c in nb.cells if not c.source.startswith("exercise(") and "\nexercise(" not in c.source]
    assert "exercise() cells, want >= 3" in exercise_problems(nb)[0]

    nb = copy.deepcopy(notebook)
    first = code_cells(nb)[0]
    first.outputs.append(nbformat.v4.new_output("error", ename="ZeroDivisionError", evalue="", traceback=[]))
    reveal = next(c for c in code_cells(nb) if c.source.strip() == "reveal()")
    reveal.metadata["tags"] = []
    assert hygiene_problems(nb) == ["error output: ZeroDivisionError", "reveal() cell not collapsed"]


def test_the_notebook_comes_second_and_links_its_neighbours(notebook):
    source = "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")
    assert "you will be able to" in " ".join(notebook.cells[0].source.split())  # it opens with the goals
    links = (
        "06_autograd.ipynb#4-how-grad-is-updated-accumulategrad",
        "03_optimizers.ipynb",
        "../../jaxmlp/core/train.py",
    )
    for target in links:
        assert target in source
    names = ("train_step", "training_loss", "epoch_permutation", "make_train_chunk", "steps_per_epoch", "random_stream")
    for function in names:  # named in the text, and really in jaxmlp/core/train.py
        assert f"`{function}`" in source and callable(getattr(jaxmlp.core.train, function)), function
