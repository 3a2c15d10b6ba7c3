# ruff: noqa: F841, B007, B023  (bodies kept as PyTorch wrote them: unused locals and loop variables included)
"""Ported from PyTorch's test/test_autograd.py (TestAutograd, TestAutogradForwardMode) and micrograd's
test/test_engine.py: saved-tensor hooks, anomaly mode, checkpoint, forward-mode AD, micrograd's programs.

Bodies as the originals, with `torch` bound to torch or to tracer (conftest.py). Adaptations are marked `# port:`.
"""

import warnings

import pytest

pytest.importorskip("torch", reason="the ported PyTorch tests need torch: pip install torch==2.13.0")


# --- saved tensors hooks ------------------------------------------------------------------------------------


def test_saved_tensors_hook_pack_and_unpack(T):
    # port: TestAutogradHooks-era test_default_saved_variable_hooks_double_backward's first part
    torch, self = T.torch, T
    a = torch.randn(5, requires_grad=True)
    y = a * a
    with torch.autograd.graph.saved_tensors_hooks(lambda x: 2 * x, lambda x: x):
        y = a * a
    y.sum().backward()
    self.assertEqual(4 * a, a.grad)


def test_saved_tensors_hook_count_pack(T):
    # port: test_pack_hook_with_inplace_modification_should_fail's counting half: one pack per saved tensor
    torch, self = T.torch, T
    packs = []
    a = torch.randn(5, requires_grad=True)
    b = torch.randn(5)

    def pack(t):
        packs.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = a * b
    y.sum().backward()
    self.assertEqual(len(packs), 1)  # MulBackward0 saves `other` only: `self` needs no gradient here
    self.assertEqual(a.grad, b)


def test_nested_saved_tensors_hooks(T):
    # port: test_setting_default_saved_variable_hooks_twice_should_use_inner
    torch, self = T.torch, T
    with torch.autograd.graph.saved_tensors_hooks(lambda x: 3 * x, lambda x: 3 * x):
        b = torch.randn(5, requires_grad=True)
        with torch.autograd.graph.saved_tensors_hooks(lambda x: 5 * x, lambda x: 5 * x):
            a = torch.randn(5, requires_grad=True)
            y = a * a
        z = b * b
    y.sum().backward()
    z.sum().backward()
    self.assertEqual(2 * 5 * 5 * a, a.grad)
    self.assertEqual(2 * 3 * 3 * b, b.grad)


# --- anomaly mode -------------------------------------------------------------------------------------------


def test_anomaly_detect_nan(T):
    torch, self = T.torch, T
    size = 10

    class MyFunc(torch.autograd.Function):
        @staticmethod
        def forward(ctx, inp1, inp2, fail_0th):
            ctx.fail_0th = fail_0th
            return inp1.sum(0, keepdim=True)

        @staticmethod
        def backward(ctx, gO):
            gI = gO.clone().expand(size)
            gI[0] = 0
            gI[0] /= 0  # Generate a nan
            if ctx.fail_0th:
                return gI, None, None
            else:
                return None, gI, None

    inp = torch.rand(size, requires_grad=True)
    out = MyFunc.apply(inp, inp, True)
    out.backward()  # Should not fail

    inp = torch.rand(size, requires_grad=True)
    out = MyFunc.apply(inp, inp, True)
    with self.assertRaisesRegex(RuntimeError, "Function 'MyFuncBackward' returned nan values in its 0th output."):
        with warnings.catch_warnings(record=True):
            with torch.autograd.detect_anomaly():
                out.backward()

    inp = torch.rand(size, requires_grad=True)
    out = MyFunc.apply(inp, inp, False)
    with self.assertRaisesRegex(RuntimeError, "Function 'MyFuncBackward' returned nan values in its 1th output."):
        with warnings.catch_warnings(record=True):
            with torch.autograd.detect_anomaly():
                out.backward()


def test_anomaly_mode_no_check_nan(T):
    torch, self = T.torch, T

    class MyFunc(torch.autograd.Function):
        @staticmethod
        def forward(ctx, inp):
            return inp.clone()

        @staticmethod
        def backward(ctx, gO):
            return torch.tensor(float("nan")).expand(10, 10)

    def run_fn(a):
        out = MyFunc.apply(a)
        return out.sum()

    with warnings.catch_warnings(record=True):
        with torch.autograd.detect_anomaly(check_nan=False):
            inp = torch.rand(10, 10, requires_grad=True)
            out = run_fn(inp)
            out.backward(retain_graph=True)

            with torch.autograd.detect_anomaly(check_nan=True):
                with self.assertRaisesRegex(
                    RuntimeError, "Function 'MyFuncBackward' returned nan values in its 0th output."
                ):
                    out.backward(retain_graph=True)

            out.backward()


def test_anomaly_grad_warnings(T):
    torch, self = T.torch, T

    class MyFunc(torch.autograd.Function):
        @staticmethod
        def forward(ctx, inp):
            return inp.clone()

        @staticmethod
        def backward(ctx, gO):
            raise RuntimeError("Simulate error on backward pass")

    inp = torch.rand(10, requires_grad=True)
    out = MyFunc.apply(inp)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        with torch.autograd.detect_anomaly():
            out = MyFunc.apply(inp)  # port: the forward recorded inside anomaly mode, as the original's is
            with self.assertRaisesRegex(RuntimeError, "Simulate error"):
                out.sum().backward()
    self.assertTrue(any("Error detected in MyFuncBackward" in str(x.message) for x in w))


def test_set_detect_anomaly(T):
    # port: test_anomaly_mode_is_enabled... : set_detect_anomaly as a context manager restores the mode
    torch, self = T.torch, T
    self.assertFalse(torch.is_anomaly_enabled())
    with torch.autograd.set_detect_anomaly(True):
        self.assertTrue(torch.is_anomaly_enabled())
    self.assertFalse(torch.is_anomaly_enabled())


# --- checkpoint ---------------------------------------------------------------------------------------------


def test_checkpoint_valid_reset_on_error(T):
    # port: non-reentrant; the original's reentrant checkpoint raises in the second backward
    torch, self = T.torch, T
    import importlib

    checkpoint = importlib.import_module(T.name + ".utils.checkpoint").checkpoint
    a = torch.randn(2, 2, requires_grad=True)
    c = checkpoint(lambda x: x.exp(), a, use_reentrant=False)
    c.sum().backward()
    self.assertEqual(a.grad, a.exp())


def test_checkpoint_kwargs(T):
    # port: test_checkpointing_without_reentrant_custom_function_works's kwargs spelling
    torch, self = T.torch, T
    import importlib

    checkpoint = importlib.import_module(T.name + ".utils.checkpoint").checkpoint

    def fn(x, scale=1.0):
        return (x * x) * scale

    a = torch.randn(3, requires_grad=True)
    out = checkpoint(fn, a, scale=3.0, use_reentrant=False)
    out.sum().backward()
    self.assertEqual(a.grad, 6 * a)


def test_checkpointing_without_reentrant_memory_savings(T):
    # port: the gradient half (memory is not measured): checkpointed and plain gradients agree
    torch, self = T.torch, T
    import importlib

    checkpoint = importlib.import_module(T.name + ".utils.checkpoint").checkpoint

    w = torch.randn(4, 4, requires_grad=True)
    x = torch.randn(3, 4)

    def block(h):
        return (h.mm(w)).relu().mm(w)

    block(x).sum().backward()
    expected = w.grad.clone()
    w.grad = None
    checkpoint(block, x, use_reentrant=False).sum().backward()
    self.assertEqual(w.grad, expected)


# --- forward mode -------------------------------------------------------------------------------------------


def test_forward_level_cleanup(T):
    torch, self = T.torch, T
    fwAD = torch.autograd.forward_ad

    def get_tensor_and_weak_ref():
        t = torch.rand(2, requires_grad=True)
        return t

    t = get_tensor_and_weak_ref()
    dual = None
    with fwAD.dual_level():
        dual = fwAD.make_dual(t, torch.rand(2))
        self.assertIsNotNone(fwAD.unpack_dual(dual).tangent)
    self.assertIsNone(fwAD.unpack_dual(dual).tangent)


def test_make_dual_inference_tensor_in_inference_mode_and_basic(T):
    # port: test_basic_packing_unpacking
    torch, self = T.torch, T
    fwAD = torch.autograd.forward_ad
    foo = torch.rand(2)
    bar = torch.rand(2)

    with fwAD.dual_level():
        baz = fwAD.make_dual(foo, bar)
        baz_primal, baz_tangent = fwAD.unpack_dual(baz)
        self.assertEqual(baz_primal, foo)
        self.assertIs(baz_tangent, bar)

        # Check unpacked dual is returned as a named tuple
        self.assertIs(fwAD.unpack_dual(baz).tangent, bar)

        # Check that packing/unpacking did not change the input
        foo_primal, foo_tangent = fwAD.unpack_dual(foo)
        self.assertEqual(foo_primal, foo)
        self.assertIsNone(foo_tangent)


def test_size_check(T):
    torch, self = T.torch, T
    fwAD = torch.autograd.forward_ad
    foo = torch.rand(2)
    tangent = torch.rand(3)

    with fwAD.dual_level():
        with self.assertRaisesRegex(RuntimeError, "Trying to set a forward gradient that has a different size"):
            dual = fwAD.make_dual(foo, tangent)

        dual = fwAD.make_dual(foo, tangent[1:])


def test_forward_ad_basic_ops(T):
    # port: test_grad_cleanup's arithmetic, checked against the hand-derived J·v
    torch, self = T.torch, T
    fwAD = torch.autograd.forward_ad
    foo = torch.rand(2)
    bar = torch.rand(2)
    baz = torch.rand(2)

    with fwAD.dual_level():
        dual = fwAD.make_dual(foo, bar)
        self.assertIsNone(fwAD.unpack_dual(foo)[1])
        self.assertIs(fwAD.unpack_dual(dual)[1], bar)

        out = dual * baz
        self.assertEqual(fwAD.unpack_dual(out)[1], bar * baz)


def test_detect_dual_tangent_dtype(T):
    # port: test_make_dual's integer-tangent check (torch: "Expected tangent to be floating point or complex")
    torch, self = T.torch, T
    fwAD = torch.autograd.forward_ad
    with fwAD.dual_level():
        with self.assertRaisesRegex(ValueError, "Expected tangent to be floating point or complex"):
            fwAD.make_dual(torch.rand(2), torch.tensor([1, 2]))


def test_enter_exit_dual_level(T):
    # port: test_nested_level's explicit spelling (enter_dual_level / exit_dual_level)
    torch, self = T.torch, T
    fwAD = torch.autograd.forward_ad
    level = fwAD.enter_dual_level()
    try:
        dual = fwAD.make_dual(torch.ones(2), torch.ones(2))
        self.assertEqual(fwAD.unpack_dual(dual * 3).tangent, torch.full((2,), 3.0))
    finally:
        fwAD.exit_dual_level(level=level)
    self.assertIsNone(fwAD.unpack_dual(dual).tangent)


def test_dual_repr(T):
    # port: test_print's dual-tensor line: the repr names the tangent
    torch, self = T.torch, T
    fwAD = torch.autograd.forward_ad
    with fwAD.dual_level():
        a = torch.rand(3)
        self.assertFalse("tangent=" in str(a))
        b = fwAD.make_dual(a, torch.rand(3))
        self.assertFalse("tangent=" in str(a))
        self.assertTrue("tangent=" in str(b))


# --- micrograd's test/test_engine.py ------------------------------------------------------------------------


def test_sanity_check(T):
    # port: micrograd's Value is replaced by the library under test; the torch half is the original's own
    torch = T.torch
    x = torch.tensor([-4.0]).double()
    x.requires_grad = True
    z = 2 * x + 2 + x
    q = z.relu() + z * x
    h = (z * z).relu()
    y = h + q + q * x
    y.backward()
    assert y.data.item() == -20.0
    assert x.grad.item() == 46.0


def test_more_ops(T):
    torch = T.torch
    a = torch.tensor([-4.0]).double()
    b = torch.tensor([2.0]).double()
    a.requires_grad = True
    b.requires_grad = True
    c = a + b
    d = a * b + b**3
    c = c + c + 1
    c = c + 1 + c + (-a)
    d = d + d * 2 + (b + a).relu()
    d = d + 3 * d + (b - a).relu()
    e = c - d
    f = e**2
    g = f / 2.0
    g = g + 10.0 / f
    g.backward()

    tol = 1e-6
    # port: micrograd's values (its Value run) written in: g = 24.70408163265306, da = 138.83381924198252,
    # db = 645.5772594752186
    assert abs(g.data.item() - 24.70408163265306) < tol
    assert abs(a.grad.item() - 138.83381924198252) < tol
    assert abs(b.grad.item() - 645.5772594752186) < tol


def test_unary_tensor_fns(T):
    torch = T.torch
    import math

    def test_unary_tensor_fn(value_fn, derivative, xs, tol=1e-6):
        for x in xs:
            xt = torch.tensor([x]).double()
            xt.requires_grad = True
            yt = value_fn(xt)
            yt.backward()
            # port: micrograd's Value side as the closed forms it computes
            assert abs(yt.data.item() - value_fn(torch.tensor([x])).item()) < tol
            assert abs(xt.grad.item() - derivative(x)) < tol

    test_unary_tensor_fn(torch.Tensor.tanh, lambda x: 1 - math.tanh(x) ** 2, [-1.0, 0.123, 2.0])
    test_unary_tensor_fn(torch.Tensor.exp, math.exp, [-1.0, 0.123, 2.0])
