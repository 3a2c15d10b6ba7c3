"""`jaxmlp explain autograd`: the user's MLP, its backward graph, and the backward pass, step by step.

PyTorch (and tracer, which retells it) records a graph while the forward pass
runs and walks it backwards afterwards; the loss owns that graph, which is freed
when the loss is dropped. JAX records nothing on its arrays: without `jit`,
`jax.grad(f)` linearizes f on each call (computing the primal values as it goes
and staging only the tangent ops, with their residuals, into a linear jaxpr) and
transposes that; under `jit` (or `jax.make_jaxpr`) it traces with abstract values,
once per input shape and dtype, into one program that XLA compiles and caches.
This command prints both. docs/notebooks/06_autograd.md runs all of it step by step.
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
    jax_loss = _show_jax_side(params, x, y)
    _hessian_vector_product(model, x, y, jax_loss)


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
        print(f"{addmm.name()}._saved_mat1 -> RuntimeError: {e}")
    print(
        "A second loss.backward() fails the same way: the activations it needs are gone (hence `retain_graph=True`). "
        "Freeing them early lowers the peak during backward; the graph itself (nodes and all they hold) is freed "
        "when the loss that owns it is dropped, by reference counting."
    )


def _write_figure(loss, params: dict, out_dir: str) -> None:
    """Section 4: the graph drawn with matplotlib (a PNG), and as Graphviz DOT for those who have Graphviz."""
    import matplotlib.pyplot as plt

    from jaxmlp.show import plots
    from tracer import viz

    _section("4. The graph as a figure")
    os.makedirs(out_dir, exist_ok=True)
    with plots.style():
        fig, ax = plt.subplots(figsize=(8, 8))
        plots.backward_graph(loss.grad_fn, {id(p): name for name, p in params.items()}, ax=ax)
        ax.set_title("the MLP's backward graph: gradients flow down, into the parameters' AccumulateGrad (blue)")
    png_path = plots.save(fig, os.path.join(out_dir, "mlp_graph.png"))
    dot_path = os.path.join(out_dir, "mlp_graph.dot")
    write_atomic(dot_path, viz.make_dot(loss, params, show_saved=True))
    print(f"wrote {png_path} (drawn with matplotlib) and {dot_path} (the same graph with its saved tensors, as")
    print(f"Graphviz DOT: `dot -Tpng {dot_path} -o graph.png` draws it where Graphviz is installed)")


def _show_jax_side(params: dict, x, y: np.ndarray):
    """Section 5: jax.grad's derivative as a program (one layer's, in full), its gradients beside tracer's."""
    import jax
    import jax.numpy as jnp

    _section("5. JAX's side: no graph on the arrays; jax.grad linearizes, then transposes")
    jparams = {n: jnp.asarray(p.data) for n, p in params.items()}

    def jax_loss(ps, x, y):
        h = x
        for i in (0, 2, 4):
            h = h @ ps[f"{i}.weight"].T + ps[f"{i}.bias"]
            if i < 4:
                h = jax.nn.relu(h)
        return -jnp.mean(jax.nn.log_softmax(h)[jnp.arange(len(y)), y])

    whole = jax.make_jaxpr(jax.grad(jax_loss))(jparams, jnp.asarray(x.data), jnp.asarray(y))
    print(
        "Traced with abstract values, as jax.make_jaxpr and jax.jit trace, jax.grad(loss) is one program: for this "
        f"MLP, a jaxpr of {len(whole.jaxpr.eqns)} equations (jax.make_jaxpr(jax.grad(loss))(params, x, y)).\n"
        "One layer shows the pattern. The jaxpr of the gradient of sum(relu(x @ W.T + b)) in W, for 4 inputs of 3\n"
        "features and 2 units: the forward ops, then the backward ones (the ReLU mask, a transposed product):\n"
    )

    def one_layer(w, b, x):
        return jnp.sum(jnp.maximum(x @ w.T + b, 0.0))  # relu

    print(jax.make_jaxpr(jax.grad(one_layer))(jnp.ones((2, 3)), jnp.zeros(2), jnp.ones((4, 3))))
    grads = jax.grad(jax_loss)(jparams, jnp.asarray(x.data), jnp.asarray(y))
    worst = max(float(np.max(np.abs(np.asarray(grads[n]) - p.grad.data))) for n, p in params.items())
    print(f"\nThe whole MLP's gradients equal tracer's backward: max |difference| = {worst:.2e}")
    print(
        textwrap.dedent("""
        The contrast: tracer/PyTorch build the graph *while* the forward runs (a tape of nodes, rebuilt every
        step, so Python control flow just works) and interpret it backwards. Without jit, jax.grad linearizes the
        function on every call: it computes the primal values as it traces (so Python control flow works too) and
        stages only the tangent ops, with the primal values they need (residuals), into a linear jaxpr, a per-call
        tape that it then transposes. Under jax.jit the trace is abstract, once per input shape and dtype, and XLA
        compiles forward and backward together into one cached program.
        """)
    )
    return jax_loss


def _hessian_vector_product(model, x, y, jax_loss) -> None:
    """Section 6: H·v of the loss in the first layer's weights, by double backward and by jax.jvp(jax.grad)."""
    import jax
    import jax.numpy as jnp

    import tracer
    import tracer.nn as nn
    from tracer import viz

    _section("6. Second order: a Hessian-vector product, by double backward and by jax.jvp(jax.grad(...))")
    params = dict(model.named_parameters())
    w1 = params["0.weight"]
    v = np.random.default_rng(0).standard_normal(w1.shape).astype(w1.dtype)
    loss = nn.CrossEntropyLoss()(model(x), y)
    (g,) = tracer.autograd.grad(loss, w1, create_graph=True)
    (hv,) = tracer.autograd.grad((g * tracer.Tensor(v)).sum(), w1)
    print(
        textwrap.dedent(f"""
        tracer.autograd.grad(loss, w1, create_graph=True) runs every backward formula as tracer ops, so the
        gradient has a graph of its own: g.grad_fn = {g.grad_fn}, {len(viz.walk(g.grad_fn))} nodes. Differentiating
        (g · v) once more gives H·v, the product of the Hessian of the loss in w1 with a direction v, without
        ever forming the {w1.data.size}x{w1.data.size} Hessian.
        """)
    )
    jparams = {n: jnp.asarray(p.data) for n, p in params.items()}
    xj, yj = jnp.asarray(x.data), jnp.asarray(y)

    def loss_in_w1(w):
        return jax_loss({**jparams, "0.weight": w}, xj, yj)

    def hvp(w, v):
        return jax.jvp(jax.grad(loss_in_w1), (w,), (v,))[1]  # forward mode over reverse mode

    program = jax.make_jaxpr(hvp)(jparams["0.weight"], jnp.asarray(v))
    print(
        "JAX composes its transformations instead: jax.jvp(jax.grad(loss)), forward mode over reverse mode, one "
        f"program of {len(program.jaxpr.eqns)} equations\n(jax.make_jaxpr(hvp)(w, v) prints them). The same "
        "composition on sum((x @ W.T)²), for 4 inputs of 3 features and 2 units:\n"
    )

    def tiny_hvp(w, v, x):
        return jax.jvp(jax.grad(lambda w: jnp.sum((x @ w.T) ** 2)), (w,), (v,))[1]

    print(jax.make_jaxpr(tiny_hvp)(jnp.ones((2, 3)), jnp.ones((2, 3)), jnp.ones((4, 3))))
    expected = np.asarray(hvp(jparams["0.weight"], jnp.asarray(v)))
    worst = float(np.max(np.abs(expected - hv.data)))
    print(f"\n|H·v| = {np.linalg.norm(expected):.4f}; tracer's double backward vs JAX: max |difference| = {worst:.2e}")
