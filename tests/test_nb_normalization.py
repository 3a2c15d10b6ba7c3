"""Notebook 5 (normalization) meets its bars: three write-it exercises with hidden solutions, BN's eval output
computed from its running statistics and matched to PyTorch's model.eval() within 1e-6, train- vs eval-mode
accuracy measured (batch size 1 included), verdicts with intervals and seeds, no errors; and the normalization
study carries none of the corrected statements."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import (
    ROOT,
    assert_no_error_outputs,
    assert_predictions_reveal_nothing_until_asked,
    code,
    executed_notebook,
    tags,
    text,
)


@pytest.fixture(scope="module")
def run():
    return executed_notebook("05_normalization")


def test_no_error_outputs(run):
    assert_no_error_outputs(run)


def test_three_exercises_with_hidden_solutions_proved_by_the_run(run):
    checks = [c for c in code(run) if "\nexercise(" in c.source]
    assert len(checks) >= 3
    for c in checks:
        assert "Not written yet" in text(c), c.source
    solutions = [c for c in code(run) if re.search(r"^def \w+_solution\(", c.source, re.M)]
    assert len(solutions) >= 3
    for c in solutions:
        assert "hide-input" in tags(c) and c.metadata.get("jupyter", {}).get("source_hidden") is True


def test_bn_eval_output_from_running_statistics_matches_model_eval_within_1e_6(run):
    exercise_cell = next(c for c in code(run) if "exercise(bn_eval," in c.source)
    assert "max |your output − model.eval()'s|" in exercise_cell.source and "1e-6" in exercise_cell.source
    assert "running_mean" in exercise_cell.source and "layer[1](z)" in exercise_cell.source
    whole = next(c for c in code(run) if "logits from running statistics by hand" in c.source)
    found = re.search(r"max \|difference\| = ([\d.e+-]+)", text(whole))
    assert found, "the PyTorch path did not run: install torch==2.13.0 and run the notebook again"
    assert float(found.group(1)) < 1e-6


def test_running_averages_against_batch_statistics_are_measured_with_batch_size_1(run):
    out = "".join(text(c) for c in code(run))
    assert re.search(r"PyTorch, eval\(\) \(running averages\): test accuracy [\d.]+ ± [\d.]+ \(n = \d\)", out)
    assert "PyTorch, train() with test batches of    1: ValueError" in out
    one = re.search(r"JAX, train mode with test batches of    1: ([\d.]+) ±", out)
    full = re.search(r"JAX, eval mode \(running averages\): test accuracy ([\d.]+) ±", out)
    assert one and full and float(one.group(1)) < 0.5 < float(full.group(1))  # batch of 1: one answer for all


def test_predictions_reveal_nothing_until_asked(run):
    assert_predictions_reveal_nothing_until_asked(run)


def test_every_measured_verdict_names_its_interval_and_seeds(run):
    table = next(c.source for c in run.cells if c.cell_type == "markdown" and "| claim | verdict |" in c.source)
    assert "FILL" not in table
    for row in table.splitlines():
        if row.startswith("| (") and re.search(r"\d\.\d+ ±", row):
            assert re.search(r"\bseeds?\b", row), row


@pytest.mark.parametrize(
    "path",
    [
        "docs/notebooks/05_normalization.md",
        "jaxmlp/show/studies/normalization.py",
        "docs/studies/normalization/report.md",
    ],
)
def test_the_corrected_statements_are_gone(path):
    body = Path(ROOT, path).read_text()
    assert "one huge eigenvalue" not in body  # statement 9
    assert "0.010 against 0.046" not in body and "loss varies less" not in body  # statement 2
    assert not re.search(r"the\s+ratio\s+of\s+the\s+two", body)  # statement 1
    assert "03_optimizers" not in body
