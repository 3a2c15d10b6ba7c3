"""The map from autograd concepts to PyTorch's C++, as torch 2.13.0 ships it: one table, two readers.

docs/notebooks/06_autograd.md renders `markdown_table()`; tests/test_autograd_cpp_map.py checks every `Decl`
against the headers of the installed wheel (`include_dir()`), so a torch upgrade that moves or changes a
declaration fails that test instead of leaving the map silently wrong. Each `Decl` is the exact text of one
line of a header under `torch/include/`, at the line number it has in torch 2.13.0.

The wheel ships headers only. The `.cpp` sources named in `Row.source` were read at a named commit of
pytorch/pytorch (the newest the project's search index holds), older than 2.13.0: their line numbers belong to
that commit, and the tested facts are the header declarations.

Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

TORCH_VERSION = "2.13.0"
A = "torch/csrc/autograd/"


@dataclass(frozen=True)
class Decl:
    path: str  # relative to the wheel's torch/include/
    line: int  # 1-based, as shipped in TORCH_VERSION
    text: str  # the line's text, without surrounding whitespace


@dataclass(frozen=True)
class Row:
    concept: str
    cpp: str  # what PyTorch's C++ holds, with the types as shipped
    decls: tuple[Decl, ...]
    python: str  # the Python face
    tracer: str  # where tracer retells it
    source: str = ""  # a .cpp read at a named commit, when the header alone does not show it


def _d(path: str, line: int, text: str) -> Decl:
    return Decl(path if path.startswith("c10/") else A + path, line, text)


ROWS: tuple[Row, ...] = (
    Row(
        "a tensor's autograd fields",
        "`struct AutogradMeta`: `Variable grad_`, `c10::intrusive_ptr<Node> grad_fn_` (strong), "
        "`c10::weak_intrusive_ptr<Node> grad_accumulator_` (weak), `requires_grad_` (leaves), "
        "`retains_grad_` (non-leaves), `output_nr_`",
        (
            _d("variable.h", 226, "struct TORCH_API AutogradMeta : public c10::AutogradMetaInterface {"),
            _d("variable.h", 229, "Variable grad_;"),
            _d("variable.h", 230, "c10::intrusive_ptr<Node> grad_fn_;"),
            _d("variable.h", 231, "c10::weak_intrusive_ptr<Node> grad_accumulator_;"),
            _d("variable.h", 264, "bool requires_grad_{false};"),
            _d("variable.h", 267, "bool retains_grad_{false};"),
            _d("variable.h", 275, "uint32_t output_nr_;"),
        ),
        "`.grad`, `.grad_fn`, `.requires_grad`, `.retain_grad()`",
        "`Tensor` in `tracer/tensor.py`",
    ),
    Row(
        "version counter",
        "`c10::VariableVersion version_counter_` in `TensorImpl`",
        (_d("c10/core/TensorImpl.h", 2907, "c10::VariableVersion version_counter_;"),),
        "`._version`",
        "`_version_counter` in `tracer/tensor.py`",
    ),
    Row(
        "the Python tensor object",
        "`struct THPVariable`, holding the C++ tensor `at::Tensor cdata`",
        (_d("python_variable.h", 18, "struct THPVariable {"), _d("python_variable.h", 21, "at::Tensor cdata;")),
        "`torch.Tensor`",
        "`Tensor` itself",
    ),
    Row(
        "a node",
        "`struct Node : c10::intrusive_ptr_target` (refcounted in the object): `release_variables`, "
        "`apply` (pure virtual), `sequence_nr_`, `next_edges_`, `pre_hooks_`, `post_hooks_`; "
        "`function.h` includes `node.h`",
        (
            _d("node.h", 113, "struct TORCH_API Node : c10::intrusive_ptr_target {"),
            _d("node.h", 561, "virtual void release_variables() {}"),
            _d("node.h", 617, "virtual variable_list apply(variable_list&& inputs) = 0;"),
            _d("node.h", 625, "uint64_t sequence_nr_;"),
            _d("node.h", 682, "edge_list next_edges_;"),
            _d("node.h", 696, "std::vector<std::unique_ptr<FunctionPreHook>> pre_hooks_;"),
            _d("node.h", 700, "std::vector<std::unique_ptr<FunctionPostHook>> post_hooks_;"),
            _d("function.h", 5, "#include <torch/csrc/autograd/node.h>"),
        ),
        "`grad_fn`, `.name()`, `.register_hook`",
        "`Node` in `tracer/graph.py`",
    ),
    Row(
        "an edge",
        "`struct Edge`: `c10::intrusive_ptr<Node> function` (strong), `uint32_t input_nr`",
        (
            _d("edge.h", 15, "struct Edge {"),
            _d("edge.h", 36, "c10::intrusive_ptr<Node> function;"),
            _d("edge.h", 39, "uint32_t input_nr;"),
        ),
        "one `(node, input_nr)` of `next_functions`",
        "a tuple in `Node.next_functions`",
    ),
    Row(
        "the Python node object",
        "`struct THPCppFunction` holding `c10::intrusive_ptr<Node> cdata`; its `next_functions` getter",
        (
            _d("python_cpp_function.h", 15, "struct THPCppFunction {"),
            _d("python_cpp_function.h", 17, "c10::intrusive_ptr<Node> cdata;"),
            _d("python_cpp_function.h", 75, "TORCH_PYTHON_API PyObject* THPCppFunction_next_functions("),
        ),
        "`loss.grad_fn`, `.next_functions`",
        "`Node` itself",
    ),
    Row(
        "a saved tensor",
        "`class SavedVariable`: `at::Tensor data_`, `saved_version_`, `is_output_`",
        (
            _d("saved_variable.h", 23, "class TORCH_API SavedVariable {"),
            _d("saved_variable.h", 95, "at::Tensor data_;"),
            _d("saved_variable.h", 111, "uint32_t saved_version_ = 0;"),
            _d("saved_variable.h", 117, "bool is_output_ = false;"),
        ),
        "`grad_fn._saved_self`, ...",
        "`SavedTensor` in `tracer/graph.py`",
        "`saved_variable.cpp` at commit 42bb7147, lines 69-86: a leaf or a non-output is saved whole; "
        "an output is saved as `variable.tensor_data()`, without its `grad_fn`, so no cycle "
        "output -> node -> output forms (2.13.0's file may number these lines differently)",
    ),
    Row(
        "the engine",
        "`Engine::execute`, `compute_dependencies`, `evaluate_function`; the `ReadyQueue` heap, "
        "ordered by `sequence_nr()`",
        (
            _d("engine.h", 87, "struct ReadyQueue {"),
            _d("engine.h", 101, "return t1.fn_->sequence_nr() < t2.fn_->sequence_nr();"),
            _d("engine.h", 153, "virtual variable_list execute("),
            _d("engine.h", 181, "void evaluate_function("),
            _d("engine.h", 211, "void compute_dependencies(Node* root, GraphTask& task, uint64_t min_topo_nr);"),
        ),
        "`loss.backward()`, `torch.autograd.grad`",
        "`run_backward` in `tracer/engine.py`",
        "the bodies are in `engine.cpp`, read at commit e1253a95 (an older snapshot that still includes "
        "`TH/TH.h`: the functions have the same names and roles; the threading code around them differs "
        "from 2.13.0)",
    ),
    Row(
        "the leaf's sink",
        "`struct AccumulateGrad : public Node`, holding `Variable variable`; `accumulateGrad` steals the "
        "first gradient when `is_tensor_stealable` (its `use_count()`) allows, else copies it; later ones "
        "`variable_grad += new_grad` in place, or `variable_grad + new_grad` out of place when grad mode is "
        "on (`create_graph=True`)",
        (
            _d("functions/accumulate_grad.h", 44, "struct TORCH_API AccumulateGrad : public Node {"),
            _d("functions/accumulate_grad.h", 182, "static void accumulateGrad("),
            _d("functions/accumulate_grad.h", 192, "impl::is_tensor_stealable("),
            _d("functions/accumulate_grad.h", 252, "variable_grad += new_grad;"),
            _d("functions/accumulate_grad.h", 269, "// Case 3: Param has existing grad and grad mode is enabled"),
            _d("functions/accumulate_grad.h", 281, "result = variable_grad + new_grad;"),
            _d("functions/accumulate_grad.h", 308, "Variable variable;"),
            _d("variable.h", 200, "inline bool is_tensor_stealable("),
            _d("variable.h", 203, "size_t use_count = new_grad.use_count();"),
        ),
        "`AccumulateGrad`, `.variable`",
        "`AccumulateGrad` in `tracer/graph.py`",
    ),
)


def cited(row: Row) -> str:
    """The row's places, one per file: `variable.h:226-275`, from its declarations' lines."""
    lines: dict[str, list[int]] = {}
    for decl in row.decls:
        lines.setdefault(decl.path, []).append(decl.line)
    parts = []
    for path, numbers in lines.items():
        low, high = min(numbers), max(numbers)
        parts.append(f"`{path}:{low}`" if low == high else f"`{path}:{low}-{high}`")
    return ", ".join(parts)


def markdown_table() -> str:
    """The map as a Markdown table, every row citing the header lines it rests on."""
    head = f"| concept | PyTorch {TORCH_VERSION} (C++) | where (torch/include/) | Python face | tracer |"
    rows = [head, "| --- | --- | --- | --- | --- |"]
    for row in ROWS:
        cpp = row.cpp + (f". Source: {row.source}" if row.source else "")
        rows.append(f"| {row.concept} | {cpp} | {cited(row)} | {row.python} | {row.tracer} |")
    return "\n".join(rows)


def include_dir() -> Path:
    """The installed wheel's header folder, torch/include/ (imports torch)."""
    import torch

    return Path(torch.__file__).resolve().parent / "include"


def mismatches(include: Path) -> list[str]:
    """Every declaration the map states that the headers under `include` do not hold at its line."""
    wrong = []
    for row in ROWS:
        for decl in row.decls:
            path = include / decl.path
            if not path.is_file():
                wrong.append(f"{decl.path}: no such header ({row.concept})")
                continue
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            found = lines[decl.line - 1].strip() if decl.line <= len(lines) else "<past the end>"
            if found != decl.text:
                elsewhere = [i + 1 for i, line in enumerate(lines) if line.strip() == decl.text]
                where = f"found at line(s) {elsewhere}" if elsewhere else "found nowhere"
                wrong.append(f"{decl.path}:{decl.line}: expected {decl.text!r}, read {found!r}; {where}")
    return wrong
