"""`jaxmlp explain autograd`: the user's MLP, its backward graph, and the backward pass, step by step.

PyTorch (and tracer, which retells it) records a graph while the forward pass
runs and walks it backwards afterwards; the loss owns that graph, which is freed
when the loss is dropped. JAX instead traces the Python function into a program
(a jaxpr) and transforms that program into its derivative: on every call of
`jax.grad(f)`, or once per input shape and dtype under `jit`, which caches it.
This command prints both. docs/notebooks/03_autograd.md runs all of it step by step.
"""

from __future__ import annotations

import os
import textwrap

import numpy as np

from jaxmlp.files import write_atomic


def _section(title: str) -> None:
    print(f"\n{'=' * 78}\n{title}\n{'=' * 78}")


def explain_autograd(out_dir: str) -> None:
    import tracer
    import tracer.nn as nn

    tracer.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
    params = dict(model.named_parameters())
    x = tracer.randn(4, 784)
    y = np.array([3, 1, 4, 1])
    loss = nn.CrossEntropyLoss()(model(x), y)
    _show_graph(loss, params)
    _show_backward(loss, params)
    _show_freed(loss)
    _write_figure(nn.CrossEntropyLoss()(model(x), y), params, out_dir)  # a new graph: the old one's tensors are freed
    _show_jax_side(params, x, y)


def _show_graph(loss, params: dict) -> None:
    from tracer import viz

    _section("1. The forward pass built a graph. loss.grad_fn is its root:")
    print(f"loss = {loss}")
    print(f"loss.grad_fn = {loss.grad_fn}")
    print(f"loss.grad_fn.next_functions = {loss.grad_fn.next_functions}")
    print(
        textwrap.dedent("""
        Each node is the *backward* of one forward op. next_functions holds one edge per input of that op:
        (node that receives the gradient for that input, which of its inputs it is). Following the edges from
        the loss reaches every parameter: a DAG, stored nowhere but in these pointers. The whole graph:
        """)
    )
    print(viz.dump(loss, params))


def _show_backward(loss, params: dict) -> None:
    import tracer
    from tracer.graph import AccumulateGrad

    names = {id(p): n for n, p in params.items()}
    _section("2. loss.backward(): the engine runs nodes in dependency order (highest sequence number first)")
    trace = []
    tracer.autograd.backward(loss, trace=trace)
    for i, (node, grads) in enumerate(trace):
        shapes = ", ".join(str(tuple(np.shape(g))) if np.ndim(g) else "scalar" for g in grads if g is not None)
        if isinstance(node, AccumulateGrad):
            target = names.get(id(node.variable), "?")
            print(f"{i:3d}. AccumulateGrad            receives {shapes:14s} -> fills {target}.grad")
        else:
            seed = "  (the seed: d loss / d loss = 1)" if i == 0 else ""
            print(f"{i:3d}. {node.name():25s} receives {shapes or '(seeds)'}{seed}")
    print("\nEvery parameter now has .grad:")
    for name, p in params.items():
        print(f"  {name:9s} grad {tuple(p.grad.shape)}  |grad| = {np.linalg.norm(p.grad.data):.4f}")


def _show_freed(loss) -> None:
    _section("3. Saved tensors were freed by backward (retain_graph=False)")
    addmm = loss.grad_fn.next_functions[0][0].next_functions[0][0]
    try:
        _ = addmm._saved_mat1
    except RuntimeError as e:
        print(f"{addmm.name()}._saved_mat1 -> RuntimeError: {str(e)[:110]}...")
    print(
        "A second loss.backward() fails the same way: the activations it needs are gone (hence `retain_graph=True`). "
        "Freeing them early lowers the peak during backward; the graph itself (nodes and all they hold) is freed "
        "when the loss that owns it is dropped, by reference counting."
    )


def _write_figure(loss, params: dict, out_dir: str) -> None:
    from tracer import viz

    _section("4. The graph as a figure")
    os.makedirs(out_dir, exist_ok=True)
    dot = viz.make_dot(loss, params, show_saved=True)
    dot_path = os.path.join(out_dir, "mlp_graph.dot")
    write_atomic(dot_path, dot)
    try:
        print(f"wrote {viz.render(dot, os.path.join(out_dir, 'mlp_graph.png'))} (and {dot_path})")
    except FileNotFoundError as e:
        print(f"wrote {dot_path}; {e}, then: dot -Tpng {dot_path} -o mlp_graph.png")


def _show_jax_side(params: dict, x, y: np.ndarray) -> None:
    import jax
    import jax.numpy as jnp

    _section("5. JAX's side: no graph on the arrays; jax.grad transforms a traced program")
    jparams = {n: jnp.asarray(p.data) for n, p in params.items()}

    def jax_loss(ps, x, y):
        h = x
        for i in (0, 2, 4):
            h = h @ ps[f"{i}.weight"].T + ps[f"{i}.bias"]
            if i < 4:
                h = jax.nn.relu(h)
        return -jnp.mean(jax.nn.log_softmax(h)[jnp.arange(len(y)), y])

    print("The jaxpr of jax.grad(loss): the derivative, written out as a program before it runs.\n")
    print(jax.make_jaxpr(jax.grad(jax_loss))(jparams, jnp.asarray(x.data), jnp.asarray(y)))
    grads = jax.grad(jax_loss)(jparams, jnp.asarray(x.data), jnp.asarray(y))
    worst = max(float(np.max(np.abs(np.asarray(grads[n]) - p.grad.data))) for n, p in params.items())
    print(f"\nSame gradients as tracer's backward: max |difference| = {worst:.2e}")
    print(
        textwrap.dedent("""
        The contrast: tracer/PyTorch build the graph *while* the forward runs (a tape of nodes, rebuilt every
        step, so Python control flow just works) and interpret it backwards. jax.grad traces the function into a
        jaxpr, linearizes it and transposes the linear part, on every call; under jax.jit that happens once per
        input shape and dtype, and XLA compiles forward and backward together.
        """)
    )
