"""The C++ map in docs/notebooks/06_autograd.md (jaxmlp/show/autograd_map.py) against the installed wheel's headers:
every declaration the table states is on the line it cites, so a torch upgrade cannot leave the map stale."""

from __future__ import annotations

import pytest

from jaxmlp.show import autograd_map

torch = pytest.importorskip("torch", reason="PyTorch is not installed: pip install torch==2.13.0")


def test_the_installed_torch_is_the_version_the_map_states():
    assert torch.__version__.split("+")[0] == autograd_map.TORCH_VERSION


def test_every_declaration_is_on_the_line_the_map_cites():
    include = autograd_map.include_dir()
    assert (include / "torch/csrc/autograd/variable.h").is_file(), f"no headers under {include}"
    assert autograd_map.mismatches(include) == []


def test_the_map_states_the_shipped_ownership_types():
    stated = {d.text for row in autograd_map.ROWS for d in row.decls}
    for declaration in (
        "c10::intrusive_ptr<Node> grad_fn_;",
        "c10::weak_intrusive_ptr<Node> grad_accumulator_;",
        "c10::intrusive_ptr<Node> function;",
        "struct TORCH_API Node : c10::intrusive_ptr_target {",
    ):
        assert declaration in stated
    table = autograd_map.markdown_table()
    assert "std::shared_ptr" not in table and "std::weak_ptr" not in table
    assert table.count("\n") == len(autograd_map.ROWS) + 1  # a header, a rule, one line per row


def test_a_moved_or_changed_declaration_is_reported(tmp_path):
    include = autograd_map.include_dir()
    for row in autograd_map.ROWS:
        for decl in row.decls:
            copy = tmp_path / decl.path
            if not copy.exists():
                copy.parent.mkdir(parents=True, exist_ok=True)
                copy.write_text((include / decl.path).read_text(encoding="utf-8", errors="replace"))
    assert autograd_map.mismatches(tmp_path) == []
    edge = tmp_path / "torch/csrc/autograd/edge.h"
    edge.write_text(
        "// one line more\n" + edge.read_text().replace("intrusive_ptr<Node> function", "shared_ptr<Node> function")
    )
    found = autograd_map.mismatches(tmp_path)
    assert any("edge.h:36" in m and "found nowhere" in m for m in found)  # the type changed
    assert any("edge.h:15" in m and "found at line(s) [16]" in m for m in found)  # the struct moved
