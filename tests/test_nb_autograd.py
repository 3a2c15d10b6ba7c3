"""docs/notebooks/06_autograd's bars, read off its committed, executed .ipynb: write-it exercises with hidden,
proven solutions; the learner's Value accumulating across two backward() calls; no error output; JAX's
linearize shown with concrete residuals; the C++ map rendered from jaxmlp/show/autograd_map.py."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from jaxmlp.show import autograd_map

NOTEBOOK = Path(__file__).resolve().parent.parent / "docs" / "notebooks" / "06_autograd.ipynb"


@pytest.fixture(scope="module")
def cells():
    return nbformat.read(NOTEBOOK, as_version=4).cells


def code(cells):
    return [c for c in cells if c.cell_type == "code"]


def text_of(cell) -> str:
    parts = []
    for output in cell.outputs:
        if output.output_type == "stream":
            parts.append(output.text)
        elif "text/markdown" in output.get("data", {}):
            parts.append(output.data["text/markdown"])
    return "".join(parts)


def cell_with(cells, needle: str):
    found = [c for c in code(cells) if needle in c.source]
    assert found, f"no code cell contains {needle!r}"
    return found[0]


def test_no_error_output_and_no_stderr(cells):
    outputs = [o for c in code(cells) for o in c.outputs]
    assert [o for o in outputs if o.output_type == "error"] == []
    assert [o.text[:200] for o in outputs if o.output_type == "stream" and o.name == "stderr"] == []


def test_at_least_four_exercises_each_with_a_stub_and_a_hidden_solution(cells):
    checks = [c for c in code(cells) if re.search(r"^(passed = )?exercise\(", c.source, re.M)]
    assert len(checks) >= 4
    for check in checks:
        name = re.search(r"exercise\((\w+), test_\1, solution=\1_solution\)", check.source).group(1)
        stub = cell_with(cells, f"def {name}(")
        assert 'NotImplementedError("your code here")' in stub.source
        solution = cell_with(cells, f"def {name}_solution(")
        assert "hide-input" in solution.metadata.get("tags", [])
        assert solution.metadata.get("jupyter", {}).get("source_hidden") is True
        assert "Not written yet" in text_of(check)  # the stub ran; its solution passed the test first


def test_the_learners_value_accumulates_across_two_backward_calls_and_matches_torch(cells):
    cell = cell_with(cells, "root.backward()\nafter_one")
    assert "check(" in cell.source and "assert np.allclose(after_two, 2 * by_jax" in cell.source
    printed = text_of(cell)
    assert "your Value, after two backward() calls" in printed
    difference = re.search(r"max \|Value - torch\| after two backward\(\) calls each: ([0-9.e+-]+)", printed)
    assert difference and float(difference.group(1)) < 1e-12


def test_every_predict_check_has_a_collapsed_reveal_after_it(cells):
    cells = code(cells)
    for i, cell in enumerate(cells):
        if re.search(r"^check\(|\n\s*check\(", cell.source):
            following = cells[i + 1]
            assert following.source.strip() == "reveal()"
            assert "hide-output" in following.metadata.get("tags", [])
            assert following.metadata.get("jupyter", {}).get("outputs_hidden") is True
            assert "Answer:" not in text_of(cell)  # no answer shown before it is asked for


def test_linearize_shows_concrete_residuals_and_grad_an_abstract_program(cells):
    printed = text_of(cell_with(cells, "jax.linearize(f, x0)"))
    assert "{ lambda a:f64[3] b:f64[3] c:f64[3]; d:f64[3]. let" in printed  # residuals, then the tangent
    assert "tanh(x0)      [ 0.462117 -0.761594  0.964028]" in printed
    assert "\x1b[" not in printed  # no terminal colour codes
    branching = text_of(cell_with(cells, "def f_branching"))
    assert "make_jaxpr(grad): TracerBoolConversionError" in branching
    assert "jit(grad): TracerBoolConversionError" in branching
    assert "{ lambda ; a:f64[3]. let" in branching  # jax.grad's program: no constants, abstract


def test_trace_counts_with_and_without_jit(cells):
    printed = text_of(cell_with(cells, "def f_counted"))
    assert re.search(r"jax.grad, two calls: +2 traces", printed)
    assert re.search(r"same shape: +1 trace", printed)
    assert re.search(r"new shape \(5,\): +2 traces", printed)


def test_the_cpp_map_is_rendered_from_the_shared_table_and_collapsed(cells):
    cell = cell_with(cells, "markdown_table()")
    assert "hide-cell" in cell.metadata.get("tags", [])
    assert text_of(cell).strip() == autograd_map.markdown_table()


def test_deeper_sections_are_marked_optional_and_their_code_collapsed(cells):
    optional = False
    for cell in cells:
        if cell.cell_type == "markdown":
            headings = re.findall(r"^#{2,3} .*$", cell.source, re.M)
            if headings:
                optional = "(optional, deeper)" in headings[-1]
        elif optional:
            assert "hide-cell" in cell.metadata.get("tags", []), cell.source[:80]


def test_the_notebook_names_itself_by_its_own_number(cells):
    prose = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    assert "03_autograd" not in prose and "notebook 3" not in prose.lower()
    assert "keeps no graph" not in prose and "traces f with abstract values" not in prose
