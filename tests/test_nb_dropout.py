"""Notebook 4 (dropout) meets its bars: three write-it exercises with hidden solutions, the train() vs eval() cell
really run in PyTorch, predictions that reveal nothing until asked, verdicts with intervals and seeds, no errors;
and the dropout study's report says no more than its table."""

from __future__ import annotations

import re

import pytest

from jaxmlp.show.studies.dropout import compare_to_no_dropout
from tests.helpers import (
    assert_no_error_outputs,
    assert_predictions_reveal_nothing_until_asked,
    code,
    executed_notebook,
    tags,
    text,
)


@pytest.fixture(scope="module")
def run():
    return executed_notebook("04_dropout")


def test_no_error_outputs(run):
    assert_no_error_outputs(run)


def test_three_exercises_with_hidden_solutions_proved_by_the_run(run):
    checks = [c for c in code(run) if c.source.lstrip().startswith("exercise(") or "\nexercise(" in c.source]
    assert len(checks) >= 3
    for c in checks:  # the stub is untouched, so the run printed "Not written yet" after the solution passed
        assert "Not written yet" in text(c), c.source
    solutions = [c for c in code(run) if re.search(r"^def \w+_solution\(", c.source, re.M)]
    assert len(solutions) >= 3
    for c in solutions:
        assert "hide-input" in tags(c) and c.metadata.get("jupyter", {}).get("source_hidden") is True
    stubs = [c for c in code(run) if 'raise NotImplementedError("your code here")' in c.source]
    assert len(stubs) >= 3


def test_train_vs_eval_is_shown_in_pytorch(run):
    cell = next(c for c in code(run) if "net.train()" in c.source and "net.eval()" in c.source)
    out = text(cell)
    train = float(re.search(r"train mode, two calls: max \|difference\| = ([\d.]+)", out).group(1))
    evals = [float(v) for v in re.findall(r"eval mode.*?:\s+max \|difference\| = ([\d.]+)", out)]
    assert train > 0 and evals == [0.0, 0.0], out  # random in train mode; deterministic, = no dropout, in eval
    assert "model.training after eval(): False" in out


def test_predictions_reveal_nothing_until_asked(run):
    assert_predictions_reveal_nothing_until_asked(run)


def test_every_measured_verdict_names_its_interval_and_seeds(run):
    table = next(c.source for c in run.cells if c.cell_type == "markdown" and "| claim | verdict |" in c.source)
    assert "FILL" not in table
    assert "tuning* seeds 0–2" in table and "seeds 10–14" in table  # tuning and final seeds differ
    for row in table.splitlines():
        if row.startswith("| (") and re.search(r"\d\.\d+ ±", row):
            assert re.search(r"±", row) and re.search(r"\bseeds?\b|n = \d", row), row


def test_the_study_report_does_not_call_dropout_a_win_where_its_table_shows_a_loss():
    fit, worse = {"train_eval_accuracy": 1.0}, {"train_eval_accuracy": 1.0}
    last = {
        "0.0": [dict(fit, test_accuracy=a, test_loss=0.24) for a in (0.948, 0.950, 0.947)],
        "0.2": [dict(worse, test_accuracy=a, test_loss=0.43) for a in (0.932, 0.934, 0.933)],
        "0.5": [dict(worse, test_accuracy=a, test_loss=loss) for a, loss in ((0.94, 0.2), (0.96, 0.3), (0.95, 0.24))],
    }
    said = compare_to_no_dropout(last)
    assert "p = 0.2: worse test accuracy and worse test loss" in said
    assert "p = 0.5: no separable difference in test accuracy" in said
    assert "pays off when" not in said
