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
    x = tracer.randn(4, 784)
    y = np.array([3, 1, 4, 1])
    _graph_and_backward(model, x, y)
    _figure(model, x, y, out_dir)
    jax_loss = _jax_side(model, x, y)
    _hessian_vector_product(model, x, y, jax_loss)


def _graph_and_backward(model, x, y) -> None:
    """Sections 1-3: the graph the forward pass built, the engine's run through it, the saved tensors freed."""
    import tracer
    import tracer.nn as nn
    from tracer import viz
    from tracer.graph import AccumulateGrad

    params = dict(model.named_parameters())
    names = {id(p): n for n, p in params.items()}
    loss = nn.CrossEntropyLoss()(model(x), y)
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


def _figure(model, x, y, out_dir: str) -> None:
    """Section 4: the graph drawn, with Graphviz when it is installed."""
    import tracer.nn as nn
    from tracer import viz

    params = dict(model.named_parameters())
    _section("4. The graph as a figure")
    os.makedirs(out_dir, exist_ok=True)
    fresh = nn.CrossEntropyLoss()(model(x), y)  # a new graph: the old one's saved tensors are freed
    dot = viz.make_dot(fresh, params, show_saved=True)
    dot_path = os.path.join(out_dir, "mlp_graph.dot")
    write_atomic(dot_path, dot)
    try:
        print(f"wrote {viz.render(dot, os.path.join(out_dir, 'mlp_graph.png'))} (and {dot_path})")
    except FileNotFoundError as e:
        print(f"wrote {dot_path}; {e}, then: dot -Tpng {dot_path} -o mlp_graph.png")


def _jax_side(model, x, y):
    """Section 5: the jaxpr of jax.grad of the same loss, and its gradients beside tracer's; returns the loss."""
    import jax
    import jax.numpy as jnp

    params = dict(model.named_parameters())
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

    print("JAX composes its transformations instead: jax.jvp(jax.grad(loss)), whose jaxpr is\n")
    print(jax.make_jaxpr(hvp)(jparams["0.weight"], jnp.asarray(v)))
    expected = np.asarray(hvp(jparams["0.weight"], jnp.asarray(v)))
    worst = float(np.max(np.abs(expected - hv.data)))
    print(f"\n|H·v| = {np.linalg.norm(expected):.4f}; tracer's double backward vs JAX: max |difference| = {worst:.2e}")
