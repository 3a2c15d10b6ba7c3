"""Look at a graph: a text dump and a Graphviz figure in the manner of torchviz's `make_dot`.

Both walk the DAG iteratively (an explicit stack), so a 10,000-node chain is fine.
"""

from __future__ import annotations

import html
import os

from tracer.graph import AccumulateGrad, reachable


def walk(root):
    """Every node reachable from `root`, each once, most recent (highest sequence number) first."""
    return sorted(reachable(root), key=lambda n: -n._sequence_nr)


def _param_names(params):
    return {id(p): name for name, p in (params or {}).items()}


def _label(node, names):
    if isinstance(node, AccumulateGrad):
        v = node.variable
        name = names.get(id(v), "leaf") if v is not None else "(freed)"
        return f"AccumulateGrad -> {name} {tuple(v.shape) if v is not None else ''}"
    return node.name()


def dump(tensor, params: dict | None = None) -> str:
    """One line per node: its name, its next_functions, its saved tensors' shapes."""
    names = _param_names(params)
    nodes = walk(tensor.grad_fn) if tensor.grad_fn is not None else []
    ids = {n: f"n{i}" for i, n in enumerate(nodes)}
    lines = []
    for n in nodes:
        nexts = ", ".join(
            f"({ids[c]} {c.name()}, {nr})" if c is not None else f"(None, {nr})" for c, nr in n.next_functions
        )
        saved = ", ".join(f"_saved_{k}: {s.describe()}" for k, s in n._saved.items())
        lines.append(
            f"{ids[n]:>4} {_label(n, names)}"
            + (f"  next_functions=({nexts})" if n.next_functions else "")
            + (f"  [{saved}]" if saved else "")
        )
    return "\n".join(lines)


def make_dot(tensor, params: dict | None = None, show_saved: bool = False) -> str:
    """Graphviz DOT source: blue boxes for parameters (name and shape), grey op nodes, orange saved tensors."""
    names = _param_names(params)
    out = [
        "digraph {",
        '  graph [rankdir=TB]; node [fontname="Helvetica" fontsize=10 shape=box style=filled];',
        f'  out [label="output {tuple(tensor.shape)}" fillcolor="#b5e7a0"];',
    ]
    if tensor.grad_fn is None:
        return "\n".join(out + ["}"])
    for n in walk(tensor.grad_fn):
        if isinstance(n, AccumulateGrad):
            v = n.variable
            label = f"{names.get(id(v), 'leaf')}\n{tuple(v.shape) if v is not None else ''}"
            out.append(f'  {id(n)} [label="{html.escape(label)}" fillcolor="#a8d8ea"];')
        else:
            out.append(f'  {id(n)} [label="{n.name()}" fillcolor="#dddddd"];')
        for c, _ in n.next_functions:
            if c is not None:
                out.append(f"  {id(c)} -> {id(n)};")
        if show_saved:
            for k, s in n._saved.items():
                out.append(f'  s{id(n)}_{k} [label="{k}\\n{s.describe()}" fillcolor="#ffd8a8" shape=ellipse];')
                out.append(f"  s{id(n)}_{k} -> {id(n)} [style=dashed arrowhead=none];")
    out.append(f"  {id(tensor.grad_fn)} -> out;")
    return "\n".join(out + ["}"])


def render(dot_source: str, path: str) -> str:
    """Render DOT to `path` (.png or .svg) with Graphviz's `dot` program (apt-get install graphviz)."""
    import shutil
    import subprocess

    if shutil.which("dot") is None:
        raise FileNotFoundError("Graphviz's `dot` is not installed (apt-get install graphviz / brew install graphviz)")
    fmt = path.rsplit(".", 1)[-1]
    tmp = path + ".tmp"
    subprocess.run(["dot", f"-T{fmt}", "-o", tmp], input=dot_source.encode(), check=True)
    os.replace(tmp, path)  # never a half-written figure
    return path


def saved_bytes(tensor) -> int:
    """Bytes of the arrays the graph behind `tensor` keeps for backward (what checkpointing trades away)."""
    total = 0
    for node in walk(tensor.grad_fn) if tensor.grad_fn is not None else []:
        for s in node._saved.values():
            kept = s.data if s.unpack_hook is None else getattr(s.packed, "data", None)
            total += kept.nbytes if kept is not None else 0
    return total
