# ruff: noqa: F841, B007, B023  (bodies kept as PyTorch wrote them: unused locals and loop variables included)
"""Ported from PyTorch's test/test_autograd.py (TestAutograd): backward, grad, the engine, accumulation.

Each test's body is PyTorch's test of the same name, run with `torch` bound to torch or to tracer (see conftest.py).
Adaptations are marked `# port:`.
"""

import gc
import warnings
import weakref

import pytest

pytest.importorskip("torch", reason="the ported PyTorch tests need torch: pip install torch==2.13.0")
pytestmark = pytest.mark.slow  # two 150,000-node graphs: over 30 s on a loaded machine


def test_accumulate_grad(T):
    torch, self = T.torch, T
    grad_output = torch.ones(5, 5)

    def compute_grad(create_graph):
        x = torch.randn(5, 5, requires_grad=True)
        y = x + 2
        y.backward(grad_output, retain_graph=True)
        x_grad = x.grad
        x_grad_clone = x.grad.clone()
        y.backward(grad_output, create_graph=create_graph)
        return x_grad, x_grad_clone

    # Accumulate in-place when create_graph is False
    x_grad, x_grad_clone = compute_grad(create_graph=False)
    self.assertEqual(x_grad, x_grad_clone * 2)

    # Accumulate out-of-place when create_graph is False
    x_grad, x_grad_clone = compute_grad(create_graph=True)
    self.assertEqual(x_grad, x_grad_clone)


def test_accumulate_grad_tensor_reference(T):
    torch, self = T.torch, T

    def _test_grad_tensor(params_grad_tensor, backward_grad_tensor, should_preserve_reference, create_graph):
        params = torch.tensor([1.5, 1.5]).requires_grad_()
        params.grad = params_grad_tensor
        grad_saved = params.grad
        params.backward(backward_grad_tensor, create_graph=create_graph)
        self.assertEqual(id(grad_saved) == id(params.grad), should_preserve_reference)

    for create_graph in (False, True):
        # port: the sparse-gradient cases are left out (tracer has no sparse tensors)
        _test_grad_tensor(torch.tensor([1.5, 1.5]), torch.tensor([1.5, 1.5]), not create_graph, create_graph)


def test_sum_to_with_empty_dim_grad(T):
    torch, self = T.torch, T
    a = torch.rand(4, 0, requires_grad=True)
    b = torch.rand(4, 1, requires_grad=True)
    c = a + b
    assert c.shape == (4, 0)
    c.sum().backward()

    self.assertEqual(b.grad, torch.zeros(4, 1))
    self.assertEqual(a.grad, torch.zeros(4, 0))


def test_hessian_vector(T):
    torch, self = T.torch, T
    x = torch.randn(2, 2, requires_grad=True)
    y = torch.randn(2, 2, requires_grad=True)

    z = x**2 + y * x + y**2
    z.backward(torch.ones(2, 2), create_graph=True)

    with torch.no_grad():
        x_grad = 2 * x + y
        y_grad = x + 2 * y
    self.assertEqual(x.grad, x_grad)
    self.assertEqual(y.grad, y_grad)

    grad_sum = 2 * x.grad + y.grad
    grad_sum.backward(torch.ones(2, 2))
    x_hv = torch.ones(2, 2) * 5
    y_hv = torch.ones(2, 2) * 4
    self.assertEqual(x.grad, x_grad + x_hv)
    self.assertEqual(y.grad, y_grad + y_hv)


def test_grad(T):
    torch, self = T.torch, T
    x = torch.randn(2, 2, requires_grad=True)
    y = torch.randn(2, 2, requires_grad=True)
    z = x**2 + y * x + y**2
    z.backward(torch.ones(2, 2), create_graph=True)

    x_grad = 2 * x + y
    y_grad = x + 2 * y
    self.assertEqual(x.grad, x_grad)
    self.assertEqual(y.grad, y_grad)

    grad_sum = 2 * x.grad + y.grad
    x_hv = torch.autograd.grad(outputs=[grad_sum], grad_outputs=[torch.ones(2, 2)], inputs=[x], create_graph=True)
    expected_x_hv = torch.ones(2, 2) * 5

    self.assertEqual(x_hv[0], expected_x_hv)
    self.assertEqual(x.grad, x_grad)
    self.assertEqual(y.grad, y_grad)

    # Test that grad_outputs and outputs have the same shape
    grad_out = torch.ones(2)
    try:
        torch.autograd.grad(outputs=[grad_sum], grad_outputs=[grad_out], inputs=[x], create_graph=True)
        self.fail()
    except RuntimeError as error:
        # port: the shapes are printed as tuples (torch prints torch.Size([2]); same numbers)
        self.assertIn("Mismatch in shape: grad_output[0] has a shape of ", str(error))


def test_grad_nonleaf(T):
    torch, self = T.torch, T
    x_init = torch.randn(2, 2, requires_grad=True)
    x = x_init
    y = torch.randn(2, 2, requires_grad=True)
    grad_output = torch.ones(2, 2)

    def fn(x):
        return x**2 + y * x + y**2

    for _ in range(5):
        (grad_x,) = torch.autograd.grad(fn(x), x, grad_outputs=grad_output, create_graph=True)

        grad_x_expected = 2 * x + y
        self.assertIsNone(y.grad)
        self.assertIsNone(x.grad)
        self.assertEqual(grad_x, grad_x_expected)

        x = x + 0.05 * grad_x

    val_init = fn(x_init).sum()
    val_final = fn(x).sum()
    self.assertGreater(val_final.item(), val_init.item())  # port: compared as Python numbers

    x.backward(grad_output)
    self.assertIsNotNone(y.grad)
    self.assertIsNotNone(x_init.grad)


def test_grad_nonleaf_register_hook(T):
    torch, self = T.torch, T
    x = torch.randn(5, requires_grad=True)
    x_list = x.unbind()

    x0 = x_list[0]
    hook_results = [None]

    def hook(grad):
        hook_results[0] = grad

    x0.register_hook(hook)

    x_list[0].backward()
    self.assertEqual(hook_results[0], torch.tensor(1.0))
    expected_grad = torch.tensor([1.0, 0, 0, 0, 0])
    self.assertEqual(x.grad, expected_grad)
    self.assertIsNone(x_list[0].grad)

    for i in range(1, 5, 1):
        x_list[i].backward()
        self.assertEqual(hook_results[0], None)
        expected_grad[i] = 1.0
        self.assertEqual(x.grad, expected_grad)
        self.assertIsNone(x_list[i].grad)


def test_hook_with_no_name(T):
    torch = T.torch

    class MyHookClass:
        def __call__(self, grad):
            return grad.clone()

    x = torch.randn(5, requires_grad=True).clone()
    x.register_hook(MyHookClass())
    x.sum().backward()


def test_sharded_grad(T):
    torch, self = T.torch, T
    leaves = [torch.zeros(5, 5, requires_grad=True) for _ in range(10)]
    intermediates = [l * i + l * l for i, l in enumerate(leaves)]  # noqa: E741
    loss = sum(v * i for i, v in enumerate(intermediates)).sum()

    def group(l, group_size):  # noqa: E741
        return (l[i : i + group_size] for i in range(0, len(l), group_size))

    shard_size = 2
    d_intermediates = [
        d_i
        for intermediates_batch in group(intermediates, shard_size)
        for d_i in torch.autograd.grad(loss, intermediates_batch)
    ]
    torch.autograd.backward(intermediates, d_intermediates)

    for i, l in enumerate(leaves):  # noqa: E741
        self.assertEqual(l.grad, i * i * (1 + l))


def test_backward_badcalls(T):
    torch, self = T.torch, T
    x = torch.ones(1)
    with self.assertRaisesRegex(RuntimeError, "does not require grad"):
        x.backward()


def test_grad_badcalls(T):
    torch, self = T.torch, T
    x = torch.ones(1)
    y = x**2
    with self.assertRaisesRegex(RuntimeError, "does not require grad"):
        torch.autograd.grad(x, y)
    with self.assertRaisesRegex(RuntimeError, "does not require grad"):
        torch.autograd.grad(y, x)

    x = torch.ones(1, requires_grad=True)
    y = x**2
    torch.autograd.grad(y, x)  # this should succeed now


def test_grad_unreachable(T):
    torch, self = T.torch, T
    x = torch.ones(1, requires_grad=True)
    y = torch.ones(1, requires_grad=True)
    z = x * 2  # noqa: F841
    w = y * 2  # noqa: F841

    grad_x, grad_y = torch.autograd.grad(x * 2, [x, y], allow_unused=True)
    self.assertEqual(grad_x, x * 2)
    self.assertIsNone(grad_y)

    z = torch.ones(1, requires_grad=True)
    grad_x, grad_z = torch.autograd.grad(x * 2, [x, z], allow_unused=True)
    self.assertEqual(grad_x, x * 2)
    self.assertIsNone(grad_z)

    with self.assertRaisesRegex(RuntimeError, "Set allow_unused=True"):
        grad_x, grad_y = torch.autograd.grad(x * 2, [x, y], allow_unused=False)


def test_grad_materialize_grads(T):
    torch, self = T.torch, T
    x = torch.tensor(0.5, requires_grad=True)
    a = torch.tensor(1.0, requires_grad=True)
    y = x * a
    dydx = torch.autograd.grad(y, x, create_graph=True)
    d2ydx2_none = torch.autograd.grad(dydx, x, create_graph=True, allow_unused=True)
    d2ydx2 = torch.autograd.grad(dydx, x, create_graph=True, allow_unused=True, materialize_grads=True)
    # `allow_unused` set to True implicitly
    d3ydx3 = torch.autograd.grad(d2ydx2, x, materialize_grads=True)
    self.assertIsNone(d2ydx2_none[0])
    self.assertEqual(d2ydx2[0].item(), 0)
    self.assertEqual(d3ydx3[0].item(), 0)
    with self.assertRaisesRegex(ValueError, "Expected allow_unused to be True or not passed when"):
        torch.autograd.grad(y, x, allow_unused=False, materialize_grads=True)


def test_backward(T):
    torch, self = T.torch, T
    v = torch.randn(5, 5, requires_grad=True)
    x = torch.randn(5, 5, requires_grad=True)
    y = (torch.rand(5, 5) + 0.1).requires_grad_(True)
    z = torch.randn(5, 5, requires_grad=True)
    grad_output = torch.randn(5, 5)

    v.backward(grad_output)
    self.assertEqual(v.grad, grad_output)

    a = x + (y * z) + 4 * z**2 * x / y
    a.backward(grad_output)
    x_grad = 4 * z.pow(2) / y + 1
    y_grad = z - 4 * x * z.pow(2) / y.pow(2)
    z_grad = 8 * x * z / y + y
    self.assertEqual(x.grad, x_grad * grad_output)
    self.assertEqual(y.grad, y_grad * grad_output)
    self.assertEqual(z.grad, z_grad * grad_output)


def test_multi_backward(T):
    torch, self = T.torch, T
    x = torch.randn(5, 5, requires_grad=True)
    y = torch.randn(5, 5, requires_grad=True)
    q = torch.randn(5, 5, requires_grad=True)
    a = torch.randn(5, 5, requires_grad=True)
    b = torch.randn(5, 5, requires_grad=True)

    q2 = q * 2
    z = x + y + q2
    c = a * b + q2
    grad_z = torch.randn(5, 5)
    grad_c = torch.randn(5, 5)
    torch.autograd.backward([z, c], [grad_z, grad_c])

    self.assertEqual(x.grad, grad_z)
    self.assertEqual(y.grad, grad_z)
    self.assertEqual(a.grad, grad_c * b)
    self.assertEqual(b.grad, grad_c * a)
    self.assertEqual(q.grad, (grad_c + grad_z) * 2)


def test_multi_backward_no_grad(T):
    torch, self = T.torch, T
    x = torch.randn(5, 5, requires_grad=True)
    y = torch.randn(5, 5, requires_grad=False)

    z = x + y
    q = y * 2

    def call_backwards():
        torch.autograd.backward([z, q], [torch.ones(5, 5), torch.ones(5, 5)])

    self.assertRaises(RuntimeError, call_backwards)


def test_backward_with_inputs(T):
    torch, self = T.torch, T
    x = torch.randn(2, 2, requires_grad=True)
    y = torch.randn(2, 2, requires_grad=True)

    def fn():
        return x**2 + y * x + y**2

    gradient = torch.ones(2, 2)
    x_grad_expected = 2 * x + y
    y_grad_expected = x + 2 * y

    @torch.no_grad()
    def reset_grad():
        x.grad.zero_()
        y.grad.zero_()

    torch.autograd.backward(fn(), gradient, inputs=[x, y])
    self.assertEqual(x.grad, x_grad_expected)
    self.assertEqual(y.grad, y_grad_expected)

    reset_grad()
    torch.autograd.backward(fn(), gradient, inputs=[x])
    self.assertEqual(x.grad, x_grad_expected)
    self.assertEqual(y.grad, torch.zeros(2, 2))

    reset_grad()
    torch.autograd.backward(fn(), gradient, inputs=[y])
    self.assertEqual(y.grad, y_grad_expected)
    self.assertEqual(x.grad, torch.zeros(2, 2))

    reset_grad()
    torch.autograd.backward(fn(), gradient, inputs=y)
    self.assertEqual(y.grad, y_grad_expected)
    self.assertEqual(x.grad, torch.zeros(2, 2))

    reset_grad()
    self.assertRaisesRegex(RuntimeError, "cannot be empty", lambda: torch.autograd.backward(fn(), gradient, inputs=[]))


def test_backward_with_nonleaf_inputs(T):
    torch, self = T.torch, T
    x = torch.randn(2, 2, requires_grad=True)
    x_nonleaf = x * 1
    y = torch.randn(2, 2, requires_grad=True)
    z = torch.randn(2, 2, requires_grad=True)

    out = x_nonleaf**2 + y * x_nonleaf + y**2

    out.backward(torch.ones(2, 2), create_graph=True, inputs=[x, y, x_nonleaf])
    x_grad_expected = 2 * x + y
    y_grad_expected = x + 2 * y
    x_non_leaf_expected = 2 * x_nonleaf + y

    self.assertEqual(y.grad, y_grad_expected)
    self.assertEqual(x.grad, x_grad_expected)
    self.assertEqual(x_nonleaf.grad, x_non_leaf_expected)

    # backward doesn't have an allow_unused flag, so the behavior of backward
    # when variable is not part of the graph is as if allow_used were true
    # x.grad will simply be None.
    out.backward(torch.ones(2, 2), create_graph=True, inputs=[z])
    self.assertIsNone(z.grad)


def test_dependent_backward(T):
    torch, self = T.torch, T
    x = torch.randn(10, requires_grad=True)
    y = x**2
    z = y**3

    go_y = torch.randn(10)
    go_z = torch.randn(10)
    torch.autograd.backward([y, z], [go_y, go_z])

    xd = x
    self.assertEqual(x.grad, 2 * xd * go_y + 6 * xd.pow(5) * go_z)


def test_free_deep_graph(T):
    torch = T.torch

    def scope():
        depth = 150000
        x = torch.randn(1, requires_grad=True)
        y = x.clone()

        # build a "chain" computation graph
        for _ in range(depth):
            y = y + y * 0.000001

    # Should not stack overflow
    scope()


def test_free_deep_graph_pyfunction(T):
    torch = T.torch

    class MyOp(torch.autograd.Function):
        @staticmethod
        def forward(ctx, tensor1, tensor2):
            return tensor1 + tensor2

        @staticmethod
        def backward(ctx, grad_output):
            return grad_output, grad_output

    def scope():
        depth = 150000
        x = torch.randn(1, requires_grad=True)
        y = x.clone()

        # build deeply nested computation graph
        for _ in range(depth):
            y = MyOp.apply(y, y)

    # Should not stack overflow
    scope()


def test_no_unnecessary_save(T):
    torch = T.torch
    # If we kept x in the derivative Function of x * 2 we would
    # get an error in the backward that would complain that we've
    # modified x, which was needed for gradient computation.
    # Since we should elide unnecessary saves, this test should pass.
    mu = torch.ones(1, requires_grad=True)
    x = torch.empty(1)
    loss = 0
    for i in range(3):
        x.detach_()
        x.copy_(mu + i)
        ft = torch.tensor([float(i)])
        multiplied = x * ft
        s = multiplied.sum()
        loss += s
    loss.backward()


def test_duplicate_backward_root(T):
    torch, self = T.torch, T
    a = torch.randn(5, 5, requires_grad=True)
    b = torch.randn(5, 5, requires_grad=True)

    x = a * b
    grad_output = torch.randn_like(x)
    torch.autograd.backward([x, x], [grad_output, grad_output])

    self.assertEqual(a.grad, b * grad_output * 2)
    self.assertEqual(b.grad, a * grad_output * 2)


def test_backward_no_grad(T):
    torch, self = T.torch, T
    a = torch.randn(5, 5, requires_grad=True)
    b = a + 2
    with self.assertRaises(RuntimeError):
        torch.autograd.backward([b], [None])


def test_backward_twice_with_saved_values(T):
    torch, self = T.torch, T
    b = torch.randn(3, requires_grad=True, dtype=torch.double)
    c = torch.zeros(3, dtype=torch.double)
    c[[1, 2]] = b[[1, 1]]
    c.backward(torch.tensor([1, 1, 1], dtype=torch.double))
    self.assertRaisesRegex(
        RuntimeError,
        "Specify retain_graph=True",
        lambda: c.backward(torch.tensor([1, 1, 1], dtype=torch.double)),
    )


def test_backward_twice_retained_graph_with_saved_values(T):
    torch = T.torch
    b = torch.randn(3, requires_grad=True, dtype=torch.double)
    c = torch.zeros(3, dtype=torch.double)
    c[[1, 2]] = b[[1, 1]]
    c.backward(torch.tensor([1, 1, 1], dtype=torch.double), retain_graph=True)
    c.backward(torch.tensor([1, 1, 1], dtype=torch.double))


def test_backward_twice_without_saved_values(T):
    torch = T.torch
    b = torch.randn(3, requires_grad=True, dtype=torch.double)
    c = b + 1
    c.backward(torch.tensor([1, 1, 1], dtype=torch.double))
    c.backward(torch.tensor([1, 1, 1], dtype=torch.double))


def test_next_functions(T):
    torch, self = T.torch, T
    x = torch.randn(5, 5, requires_grad=True)
    y = torch.randn(5, 5, requires_grad=True)

    a = x + y
    self.assertIsNotNone(a.grad_fn)
    next_functions = a.grad_fn.next_functions
    self.assertEqual(len(next_functions), 2)
    # port: AccumulateGrad checked by name (torch._C._functions.AccumulateGrad is torch's C++ class)
    self.assertIn("AccumulateGrad", type(next_functions[0][0]).__name__)
    self.assertEqual(next_functions[0][1], 0)
    self.assertIn("AccumulateGrad", type(next_functions[1][0]).__name__)
    self.assertEqual(next_functions[1][1], 0)

    b = a + 5
    next_functions = b.grad_fn.next_functions
    self.assertEqual(len(next_functions), 2)
    self.assertIs(next_functions[0][0], a.grad_fn)
    self.assertIs(next_functions[1][0], None)


def test_backward_copy(T):
    torch, self = T.torch, T
    x = torch.ones(5, 5, requires_grad=True)
    y = torch.ones(5, 5, requires_grad=True)
    a = x + 2
    b = y + 2
    c = x + 2
    add1 = a + b
    add2 = add1 + c
    for _ in range(4):
        a = a * 2
        b = b * 2
        c = c * 2
    branch = a + b + c
    out = add2 + branch
    grad_output = torch.ones(5, 5)
    out.backward(grad_output)
    self.assertEqual(x.grad, torch.ones(5, 5) * 34)
    self.assertEqual(y.grad, torch.ones(5, 5) * 17)


def test_grad_nonleaf_many_outputs(T):
    torch, self = T.torch, T
    x = torch.randn(4, 2, requires_grad=True)
    a, b = x[:2], x[2:]  # port: x.chunk(2) spelled as the two slices it makes

    def hook(*grads):
        hook_called[0] = True

    hook_called = [False]
    x.register_hook(hook)

    go = torch.randn(2, 2)
    grad_a, grad_b = torch.autograd.grad((a + 2 * b), [a, b], grad_outputs=go, create_graph=True)

    self.assertEqual(grad_a, go)
    self.assertEqual(grad_b, go * 2)
    self.assertFalse(hook_called[0])
    self.assertIsNone(x.grad)


def test_retain_grad(T):
    torch, self = T.torch, T
    input = torch.rand(1, 3, requires_grad=True)
    h1 = input * 3
    out = (h1 * h1).sum()

    # It should be possible to call retain_grad() multiple times
    h1.retain_grad()
    h1.retain_grad()

    # Gradient should be accumulated
    out.backward(retain_graph=True)
    self.assertEqual(h1 * 2, h1.grad)
    out.backward(retain_graph=True)
    self.assertEqual(h1 * 4, h1.grad)

    with torch.no_grad():
        input.grad.zero_()
    # It should be a no-op for leaves
    input.retain_grad()
    input.retain_grad()
    out.backward()
    self.assertEqual(input * 18, input.grad)


def test_retain_grad_cycle(T):
    torch, self = T.torch, T
    counter = [0]
    refs = [None]

    x = torch.ones(5, 5, requires_grad=True)

    def run_test():
        y = x * 2
        y.retain_grad()

        def inc(*args):
            counter[0] += 1

        refs[0] = weakref.ref(y, inc)
        return y / 2

    z = run_test()
    gc.collect()
    self.assertIsNone(refs[0]())
    self.assertEqual(counter[0], 1)
    z.sum().backward()


def test_retain_grad_inplace(T):
    torch, self = T.torch, T
    a = torch.tensor([1.0], requires_grad=True).clone()
    a.retain_grad()
    a.mul_(2)
    a.sum().backward()
    self.assertEqual(a.grad, torch.tensor([1.0]))

    a = torch.tensor([1.0], requires_grad=True).clone()
    a.retain_grad()
    # Inplace multiple times is OK
    a.mul_(2)
    a.mul_(2)
    a.sum().backward()
    self.assertEqual(a.grad, torch.tensor([1.0]))


def test_accumulate_grad_with_zero_numel_grad(T):
    torch, self = T.torch, T
    a = torch.rand(4, 0, requires_grad=True)
    b = torch.rand(4, 1, requires_grad=True)
    c = a + b
    assert c.shape == (4, 0)
    c.sum().backward()

    self.assertEqual(b.grad, torch.zeros(4, 1))
    self.assertEqual(a.grad, torch.zeros(4, 0))


def test_grad_mode_restored_reentrant(T):
    torch, self = T.torch, T

    class MyFunction(torch.autograd.Function):
        @staticmethod
        def forward(ctx, inp):
            return inp.clone()

        @staticmethod
        def backward(ctx, go):
            original = torch.is_grad_enabled()
            with torch.enable_grad():
                self.assertTrue(torch.is_grad_enabled())
                foo = torch.rand(go.size(), requires_grad=True)
                (grad,) = torch.autograd.grad(foo**3, foo, grad_outputs=go)
                self.assertTrue(torch.is_grad_enabled())
            self.assertTrue(torch.is_grad_enabled() == original)
            return grad

    inp = torch.rand(3, requires_grad=True)

    # Case where original==False
    MyFunction.apply(inp).sum().backward()
    # Case where original==True
    MyFunction.apply(inp).sum().backward(create_graph=True)


def _simulate_backward_error(torch):
    """TestAutograd.SimulateBackwardError (a class attribute of PyTorch's TestCase), made per library."""

    class SimulateBackwardError(torch.autograd.Function):
        @staticmethod
        def forward(ctx, input):
            return input.clone()

        @staticmethod
        @torch.autograd.function.once_differentiable
        def backward(ctx, input):
            raise Exception("Simulate error on backward pass")

    return SimulateBackwardError


def test_custom_function_exception(T):
    torch, self = T.torch, T
    t1 = torch.rand((3, 3), requires_grad=True)
    t2 = torch.rand((3, 3), requires_grad=True)

    tmp = (t1 + t2) * (t1 + t2)
    t3 = _simulate_backward_error(torch).apply(tmp)
    with self.assertRaisesRegex(Exception, "Simulate error on backward pass"):
        t3.sum().backward()


def test_reentrant_child_error(T):
    torch, self = T.torch, T
    # Parent graph.
    a = torch.rand(3, 3, requires_grad=True)
    c = a * a

    # Reentrant child graph.
    b = torch.rand(3, 3, requires_grad=True)
    e = b * b
    f = _simulate_backward_error(torch).apply(e)
    reentrant_root = f.sum()

    class ReentrantFunc(torch.autograd.Function):
        @staticmethod
        def forward(ctx, inp):
            return inp.clone()

        @staticmethod
        def backward(ctx, grad):
            # Reentrant backward in child will throw an error.
            reentrant_root.backward()
            return grad

    d = ReentrantFunc.apply(c)
    with self.assertRaisesRegex(Exception, "Simulate error"):
        d.sum().backward()


def test_backward_twice_retained_graph_without_saved_values(T):
    torch = T.torch
    b = torch.randn(3, requires_grad=True, dtype=torch.double)
    c = torch.zeros(3, dtype=torch.double)
    c[[1, 2]] = b[[1, 1]]
    c.backward(torch.tensor([1, 1, 1], dtype=torch.double), retain_graph=True)
    c.backward(torch.tensor([1, 1, 1], dtype=torch.double))


def test_simple_reentrant(T):
    torch, self = T.torch, T
    y_data = torch.randn(2, 2)

    class Reenter(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            with torch.enable_grad():
                ctx.x = x.detach().requires_grad_()  # port: Variable(x, requires_grad=True)
                ctx.y = y_data.clone().requires_grad_()
                ctx.output_var = ctx.x * ctx.y
            return ctx.output_var.detach()

        @staticmethod
        def backward(ctx, grad_output):
            with torch.enable_grad():
                ctx.output_var.sum().backward()
            return ctx.x.grad * grad_output

    x = torch.randn(2, 2, requires_grad=True)
    out = Reenter.apply(x)
    out.sum().backward()
    self.assertEqual(x.grad, y_data)


def test_reentrant_with_leaf_variable_hook(T):
    torch = T.torch
    handle = None
    param = torch.rand(10, requires_grad=True)

    def add_gradient_penalty_to_grad(grad):
        handle.remove()
        old_param_grad = grad
        param.grad = None
        # Add some sort of gradient penalty by directly updating the gradients
        with torch.enable_grad():
            g = grad.detach().requires_grad_()
            new_param = param.detach().requires_grad_()
            out = ((g * 2) + new_param).sum()
            out.backward()
        res = g.grad + grad
        param.grad = old_param_grad
        return res

    handle = param.register_hook(add_gradient_penalty_to_grad)
    # Forward pass
    tmp = param * param
    loss = tmp.sum()
    # Compute the gradients
    loss.backward()


def test_reentrant_with_non_leaf_variable_hook(T):
    torch, self = T.torch, T
    handle = None
    param = torch.rand(10, requires_grad=True)

    def manual_increase_gradient(grad):
        handle.remove()
        # Add some sort of gradient penalty by directly updating the gradients
        with torch.enable_grad():
            g = grad.detach().requires_grad_()
            out = ((g * 2) + 5).sum()
            out.backward()
        res = g.grad + grad
        return res

    # Forward pass
    tmp = param * param
    handle = tmp.register_hook(manual_increase_gradient)
    loss = tmp.sum()
    # Compute the gradients
    loss.backward()
    self.assertEqual(param.grad, 6 * param)


def test_tensor_grad_warnings(T):
    torch, self = T.torch, T
    dummy = torch.empty(1)

    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")  # port: pytest's own filters made explicit
        # Accessing .grad on leaf
        dummy.requires_grad_()
        foo = dummy.grad
        self.assertEqual(len(w), 0)

        # Accessing .grad on non-leaf
        dummy = dummy.clone()
        foo = dummy.grad
        self.assertEqual(len(w), 1)

        # Accessing .grad on non-leaf that retains gradients
        dummy.retain_grad()
        foo = dummy.grad
        self.assertEqual(len(w), 1)
