# ruff: noqa: F841, B007, B023  (bodies kept as PyTorch wrote them: unused locals and loop variables included)
"""Ported from PyTorch's test/test_autograd.py (TestAutograd): grad mode, requires_grad, in-place ops and versions,
indexing and views, hooks, detach, type conversions.

Each test's body is PyTorch's test of the same name, with `torch` bound to torch or to tracer (conftest.py).
Adaptations are marked `# port:`.
"""

import math
from copy import deepcopy

import pytest

pytest.importorskip("torch", reason="the ported PyTorch tests need torch: pip install torch==2.13.0")


def test_no_grad(T):
    torch, self = T.torch, T
    x = torch.ones(5, 5, requires_grad=True)
    y = torch.ones(5, 5) * 4
    with torch.no_grad():
        w = x + y

    def adder(x, y):
        return x + y

    adders = [torch.no_grad()(adder), torch.no_grad(adder)]

    for adder in adders:
        z = adder(x, y)

        self.assertFalse(w.requires_grad)
        self.assertRaises(RuntimeError, lambda: w.backward(torch.ones(5, 5)))
        self.assertIsNone(w.grad_fn)
        self.assertFalse(z.requires_grad)
        self.assertRaises(RuntimeError, lambda: z.backward(torch.ones(5, 5)))
        self.assertIsNone(z.grad_fn)

    # test nested decorator and with-statement on no_grad
    with torch.no_grad():
        self.assertFalse(torch.is_grad_enabled())
        w = adder(x, y)
        self.assertFalse(torch.is_grad_enabled())


def test_enable_grad_decorator_no_paren(T):
    torch, self = T.torch, T
    x = torch.ones(1, requires_grad=True)

    @torch.enable_grad
    def doubler(x):
        return x * 2

    with torch.no_grad():
        z = doubler(x)
    self.assertTrue(z.requires_grad)


def test_set_grad_generator_functions(T):
    torch, self = T.torch, T

    @torch.no_grad()
    def gen_no_grad():
        for i in range(10):
            self.assertEqual(torch.is_grad_enabled(), False)
            yield i

    with torch.enable_grad():
        for _ in gen_no_grad():
            self.assertEqual(torch.is_grad_enabled(), True)

    @torch.enable_grad()
    def gen_enable_grad():
        for i in range(10):
            self.assertEqual(torch.is_grad_enabled(), True)
            yield i

    with torch.no_grad():
        for _ in gen_enable_grad():
            self.assertEqual(torch.is_grad_enabled(), False)


def test_set_grad_generator_functions_recursive(T):
    torch, self = T.torch, T

    # enable_grad_decorator_recursive and no_grad_decorator_recursive call each other
    # recursively, to ensure that the decorators preserve the caller's setting
    @torch.enable_grad()
    def enable_grad_decorator_recursive(depth):
        self.assertTrue(torch.is_grad_enabled())
        if depth > 0:
            no_grad_decorator_recursive(depth - 1)
            self.assertTrue(torch.is_grad_enabled())

    @torch.no_grad()
    def no_grad_decorator_recursive(depth):
        self.assertFalse(torch.is_grad_enabled())
        if depth > 0:
            enable_grad_decorator_recursive(depth - 1)
            self.assertFalse(torch.is_grad_enabled())

    # enable_grad_context_manager_recursive and no_grad_context_manager_recursive call
    # each other recursively, to ensure that the decorators preserve the caller's setting
    def enable_grad_context_manager_recursive(depth):
        with torch.enable_grad():
            self.assertTrue(torch.is_grad_enabled())
            if depth > 0:
                no_grad_context_manager_recursive(depth - 1)
                self.assertTrue(torch.is_grad_enabled())

    def no_grad_context_manager_recursive(depth):
        with torch.no_grad():
            self.assertFalse(torch.is_grad_enabled())
            if depth > 0:
                enable_grad_context_manager_recursive(depth - 1)
                self.assertFalse(torch.is_grad_enabled())

    with torch.enable_grad():
        self.assertTrue(torch.is_grad_enabled())
        enable_grad_decorator_recursive(10)
        self.assertTrue(torch.is_grad_enabled())
        enable_grad_context_manager_recursive(10)
        self.assertTrue(torch.is_grad_enabled())

    with torch.no_grad():
        self.assertFalse(torch.is_grad_enabled())
        enable_grad_decorator_recursive(10)
        self.assertFalse(torch.is_grad_enabled())
        enable_grad_context_manager_recursive(10)
        self.assertFalse(torch.is_grad_enabled())


def test_set_grad_coroutines(T):
    torch, self = T.torch, T

    @torch.no_grad()
    def coro_no_grad(n=10):
        self.assertFalse(torch.is_grad_enabled())
        for i in range(n):
            self.assertFalse(torch.is_grad_enabled())
            r = yield i
            self.assertFalse(torch.is_grad_enabled())
            self.assertEqual(i, r)
        self.assertFalse(torch.is_grad_enabled())

    @torch.enable_grad()
    def coro_enable_grad(n=10):
        self.assertTrue(torch.is_grad_enabled())
        for i in range(n):
            self.assertTrue(torch.is_grad_enabled())
            r = yield i
            self.assertTrue(torch.is_grad_enabled())
            self.assertEqual(i, r)
        self.assertTrue(torch.is_grad_enabled())

    with torch.enable_grad():
        self.assertTrue(torch.is_grad_enabled())
        coro, r = coro_no_grad(), None
        try:
            while True:
                self.assertTrue(torch.is_grad_enabled())
                r = coro.send(r)
                self.assertTrue(torch.is_grad_enabled())
        except StopIteration:
            pass

    with torch.no_grad():
        self.assertFalse(torch.is_grad_enabled())
        coro, r = coro_enable_grad(), None
        try:
            while True:
                self.assertFalse(torch.is_grad_enabled())
                r = coro.send(r)
                self.assertFalse(torch.is_grad_enabled())
        except StopIteration:
            pass


def test_set_grad_coroutines_exit(T):
    torch, self = T.torch, T

    @torch.no_grad()
    def coro_no_grad(state):
        for i in range(10):
            try:
                self.assertFalse(torch.is_grad_enabled())
                yield i
            except GeneratorExit:
                self.assertFalse(torch.is_grad_enabled())
                state.add("GeneratorExit")
                raise

    @torch.enable_grad()
    def coro_enable_grad(state):
        for i in range(10):
            try:
                self.assertTrue(torch.is_grad_enabled())
                yield i
            except GeneratorExit:
                self.assertTrue(torch.is_grad_enabled())
                state.add("GeneratorExit")
                raise

    state = set()
    with torch.enable_grad():
        coro = coro_no_grad(state)
        for i in range(5):
            next(coro)
        coro.close()
    self.assertTrue("GeneratorExit" in state)

    state = set()
    with torch.no_grad():
        coro = coro_enable_grad(state)
        for i in range(5):
            next(coro)
        coro.close()
    self.assertTrue("GeneratorExit" in state)


def test_set_grad_enabled(T):
    torch, self = T.torch, T
    x = torch.tensor([1.0], requires_grad=True)
    with torch.set_grad_enabled(False):
        y = x * 2
    self.assertFalse(y.requires_grad)
    with torch.set_grad_enabled(True):
        y = x * 2
    self.assertTrue(y.requires_grad)
    with torch.set_grad_enabled(False):
        torch.set_grad_enabled(True)
        y = x * 2
    self.assertTrue(y.requires_grad)


def test_requires_grad(T):
    torch, self = T.torch, T
    x = torch.randn(5, 5)
    y = torch.randn(5, 5)
    z = torch.randn(5, 5, requires_grad=True)
    a = x + y
    self.assertFalse(a.requires_grad)
    b = a + z
    self.assertTrue(b.requires_grad)
    # port: the _backward_hooks traps are left out (a torch internal)
    b.backward(torch.ones(5, 5))


def test_requires_grad_(T):
    torch, self = T.torch, T
    x = torch.randn(5, 5)
    y = torch.randn(5, 5, requires_grad=True)
    self.assertIs(x, x.requires_grad_())
    self.assertTrue(x.requires_grad)
    self.assertIs(y, y.requires_grad_())
    self.assertTrue(y.requires_grad)
    self.assertIs(x, x.requires_grad_(True))
    self.assertTrue(x.requires_grad)
    self.assertIs(y, y.requires_grad_(True))
    self.assertTrue(y.requires_grad)
    z = x * y
    self.assertRaises(RuntimeError, lambda: z.requires_grad_(False))
    self.assertIs(z, z.requires_grad_())
    self.assertTrue(z.requires_grad)
    self.assertIs(z, z.requires_grad_(True))
    self.assertTrue(z.requires_grad)

    self.assertIs(x, x.requires_grad_(False))
    self.assertFalse(x.requires_grad)
    self.assertIs(y, y.requires_grad_(False))
    self.assertFalse(y.requires_grad)


def test_requires_grad_inplace(T):
    torch, self = T.torch, T
    a = torch.randn(5, 5)
    b = torch.randn(5, 5, requires_grad=True)
    a += b
    self.assertTrue(a.requires_grad)

    # non-leaf
    a = torch.randn(5, 5) + 0
    b = torch.randn(5, 5, requires_grad=True)
    a += b
    self.assertTrue(a.requires_grad)


def test_no_requires_grad_inplace(T):
    torch, self = T.torch, T
    # basic case, should be able to modify inplace while requires_grad is False
    a = torch.randn(2, 3)
    a.add_(5)
    a.requires_grad = True
    a.sum().backward()
    self.assertEqual(a.grad, torch.ones(2, 3))

    # same but with a view
    a = torch.randn(2, 3)
    b = a[:]
    b.add_(5)
    a.requires_grad = True
    a.sum().backward()
    self.assertEqual(a.grad, torch.ones(2, 3))

    # should fail if requires_grad = True when we modify inplace
    a = torch.randn(2, 3)
    b = a[:]
    a.requires_grad = True
    with self.assertRaises(RuntimeError):
        a.add_(5)
    with self.assertRaises(RuntimeError):
        b.add_(5)


def test_grad_assignment(T):
    torch, self = T.torch, T
    x = torch.randn(5, 5)

    # Tests that the wrong type raises
    with self.assertRaisesRegex(TypeError, "expected to be a Tensor or None"):
        x.grad = 0

    # Tests that the wrong shape raises
    with self.assertRaises(RuntimeError):
        x.grad = torch.randn(2, 2)

    # Tests that the wrong dtype raises
    with self.assertRaises(RuntimeError):
        x.grad = torch.randn(5, 5).long()

    # Tests that self-assignment raises
    with self.assertRaises(RuntimeError):
        x.grad = x


def test_attribute_deletion(T):
    torch, self = T.torch, T
    x = torch.randn((5, 5), requires_grad=True)
    del x.grad
    self.assertIsNone(x.grad)
    # port: the data/_grad_fn/_backward_hooks deletions are left out (torch internals)


def test_inplace(T):
    torch, self = T.torch, T
    x = torch.ones(5, 5, requires_grad=True)
    y = (torch.ones(5, 5) * 4).requires_grad_()  # port: Variable(t, requires_grad=True)

    z = x * y
    q = z + y
    w = z * y
    z.add_(2)
    # Add doesn't need it's inputs to do backward, so it shouldn't raise
    q.backward(torch.ones(5, 5), retain_graph=True)
    # Mul saves both inputs in forward, so it should raise
    self.assertRaises(RuntimeError, lambda: w.backward(torch.ones(5, 5)))

    z = x * y
    q = z * y
    r = z + y
    w = z.add_(y)
    # w is a the last expression, so this should succeed
    w.backward(torch.ones(5, 5), retain_graph=True)
    # r doesn't use the modified value in backward, so it should succeed
    r.backward(torch.ones(5, 5), retain_graph=True)
    # q uses dirty z, so it should raise
    self.assertRaises(RuntimeError, lambda: q.backward(torch.ones(5, 5)))

    with torch.no_grad():
        x.grad.zero_()
    m = x / 2
    z = m + y / 8
    q = z * y
    r = z + y
    prev_version = z._version
    w = z.exp_()
    self.assertNotEqual(z._version, prev_version)
    r.backward(torch.ones(5, 5), retain_graph=True)
    self.assertEqual(x.grad, torch.ones(5, 5) / 2)
    w.backward(torch.ones(5, 5), retain_graph=True)
    self.assertEqual(x.grad, torch.empty(5, 5).fill_((1 + math.e) / 2))
    self.assertRaises(RuntimeError, lambda: q.backward(torch.ones(5, 5)))

    leaf = torch.ones(5, 5, requires_grad=True)
    x = leaf.clone()
    x.add_(10)
    self.assertEqual(x, torch.ones(5, 5) * 11)
    # x should be still usable
    y = x + 2
    y.backward(torch.ones(5, 5))
    self.assertEqual(leaf.grad, torch.ones(5, 5))
    z = x * y
    x.add_(2)
    self.assertRaises(RuntimeError, lambda: z.backward(torch.ones(5, 5)))


def test_mark_dirty_version_bump(T):
    # port: the version rule of test_inplace_on_view_... : an in-place op bumps _version by one
    torch, self = T.torch, T
    x = torch.ones(3)
    v = x._version
    x.add_(1)
    self.assertEqual(x._version, v + 1)
    x.mul_(2)
    self.assertEqual(x._version, v + 2)


def test_no_grad_modifies_version(T):
    torch, self = T.torch, T
    x = torch.randn(5, requires_grad=True)
    y = torch.randn(5, requires_grad=True)
    z = (x * y).sum()
    with torch.no_grad():
        x *= 2
    self.assertRaisesRegex(RuntimeError, "modified by an inplace operation", lambda: z.backward())


def test_no_grad_assignment(T):
    torch, self = T.torch, T
    x = torch.randn(5, 5, requires_grad=True)
    y = torch.randn(5)
    with torch.no_grad():
        x[0] = y

    self.assertTrue(x.requires_grad)
    self.assertIsNone(x.grad_fn)


def test_leaf_assignment(T):
    torch, self = T.torch, T
    x = torch.randn(5, 5)
    y = torch.randn(5, requires_grad=True)
    z = torch.randn(5, requires_grad=True)

    x[0] = y
    x[1] = 2 * z
    self.assertTrue(x.requires_grad)
    self.assertIsNot(x.grad_fn, None)
    x.sum().backward()
    self.assertEqual(y.grad, torch.ones(5))
    self.assertEqual(z.grad, torch.ones(5) * 2)


def _test_setitem(T, size, index):
    torch, self = T.torch, T
    x = torch.ones(*size, requires_grad=True)
    y = x + 2
    y_version = y._version
    y[index] = 2
    self.assertNotEqual(y._version, y_version)
    y.backward(torch.ones(*size))
    expected_grad = torch.ones(*size)
    expected_grad[index] = 0
    self.assertEqual(x.grad, expected_grad)


def _test_setitem_tensor(T, size, index):
    torch, self = T.torch, T
    x = torch.ones(*size, requires_grad=True)
    y = x + 2
    y_version = y._version
    value = x.new(x[index].size()).fill_(7)
    value.requires_grad = True
    y[index] = value
    self.assertNotEqual(y._version, y_version)
    y.backward(torch.ones(*size))
    expected_grad_input = torch.ones(*size)
    expected_grad_input[index] = 0
    self.assertEqual(x.grad, expected_grad_input)
    self.assertEqual(value.grad, torch.ones_like(value))

    # case when x broadcasts to as y[1]
    x = torch.randn(4, requires_grad=True)
    y = torch.zeros(2, 3, 4)
    y[1] = x
    y.backward(torch.randn(2, 3, 4))
    self.assertEqual(x.size(), x.grad.size())


def test_setitem(T):
    torch = T.torch
    _test_setitem(T, (5, 5), 1)
    _test_setitem(T, (5,), 1)
    _test_setitem(T, (1,), 0)
    _test_setitem(T, (10,), [[0, 4, 2]])
    _test_setitem(T, (5, 5), [[0, 4], [2, 2]])
    _test_setitem(T, (5, 5, 5), [slice(None), slice(None), [1, 3]])
    _test_setitem(T, (5, 5, 5), [slice(None), [1, 3], slice(None)])
    _test_setitem(T, (5, 5, 5), [[1, 3], slice(None), slice(None)])
    _test_setitem(T, (5, 5, 5), [slice(None), [2, 4], [1, 3]])
    _test_setitem(T, (5, 5, 5), [[1, 3], [2, 4], slice(None)])
    _test_setitem_tensor(T, (5, 5), 3)
    _test_setitem_tensor(T, (5, 5), [[0, 1], [1, 0]])
    _test_setitem_tensor(T, (5,), 3)
    _test_setitem_tensor(T, (5,), torch.tensor([3]).sum())  # port: Variable(torch.LongTensor([3])).sum()
    _test_setitem_tensor(T, (5,), [[0, 1, 2, 3]])
    _test_setitem_tensor(T, (5, 5, 5), [slice(None), slice(None), [1, 3]])
    _test_setitem_tensor(T, (5, 5, 5), [slice(None), [1, 3], slice(None)])
    _test_setitem_tensor(T, (5, 5, 5), [[1, 3], slice(None), slice(None)])
    _test_setitem_tensor(T, (5, 5, 5), [slice(None), [2, 4], [1, 3]])
    _test_setitem_tensor(T, (5, 5, 5), [[1, 3], [2, 4], slice(None)])
    _test_setitem_tensor(T, (5, 5, 5), [torch.tensor([1, 3]), [2, 4], slice(None)])


def test_setitem_mask(T):
    torch = T.torch
    mask = (
        torch.tensor(  # port: torch.BoolTensor(5, 5).bernoulli_() as a fixed mask
            [[1, 0, 1, 1, 0], [0, 1, 0, 0, 1], [1, 1, 0, 1, 0], [0, 0, 1, 0, 1], [1, 0, 0, 1, 1]]
        )
        > 0
    )
    _test_setitem(T, (5, 5), mask)
    _test_setitem(T, (5,), mask[0])
    _test_setitem(T, (1,), mask[0, 0:1])
    _test_setitem_tensor(T, (5, 5), mask)
    _test_setitem_tensor(T, (5,), mask[0])


def test_index_backward_does_not_save_tensor(T):
    torch = T.torch
    a = torch.tensor([1.0, 0, 0])
    b = torch.zeros(3, requires_grad=True)
    tensor = b + 0
    tensor[a != 0] = tensor[a != 0]
    tensor.backward(torch.zeros_like(tensor))


def _check_index(T, x, y, idx):
    torch, self = T.torch, T
    if y.grad is not None:
        with torch.no_grad():
            y.grad.zero_()
    indexed_tensor = x[idx]
    indexed_var = y[idx]

    indexed_var_t = indexed_var.data
    if not isinstance(indexed_tensor, torch.Tensor):
        indexed_var_t = indexed_var_t[0]
    self.assertEqual(indexed_tensor, indexed_var_t)

    indexed_var.sum().backward()
    expected_grad = torch.empty(x.size()).fill_(0)
    expected_grad[idx] = 1
    self.assertEqual(y.grad, expected_grad)


def test_indexing(T):
    torch = T.torch
    x = torch.arange(1.0, 17).view(4, 4)
    y = x.clone().requires_grad_()  # port: Variable(x, requires_grad=True)

    def check_index(x, y, idx):
        _check_index(T, x, y, idx)

    check_index(x, y, 1)
    check_index(x, y, (1, 1))
    check_index(x, y, slice(1, None))
    check_index(x, y, slice(None, 2))
    check_index(x, y, (slice(None, 2), 2))
    check_index(x, y, (slice(1, 2), 2))
    check_index(x, y, (1, slice(2, None)))
    check_index(x, y, (slice(None, None), slice(2, None)))
    check_index(x, y, torch.tensor([0, 2]))
    check_index(x, y, torch.rand(4, 4) > 0.5)  # port: torch.rand(4, 4).bernoulli().bool()
    check_index(x, y, (Ellipsis, slice(2, None)))
    check_index(x, y, ([0], [0]))
    check_index(x, y, ([1, 2, 3], [0]))
    check_index(x, y, ([1, 2], [2, 1]))
    check_index(x, y, ([[1, 2], [3, 0]], [[0, 1], [2, 3]]))
    check_index(x, y, ([slice(None), [2, 3]]))
    check_index(x, y, ([[2, 3], slice(None)]))

    # advanced indexing, with less dim, or ellipsis
    check_index(x, y, ([0]))

    x = torch.arange(1.0, 49).view(4, 3, 4)
    y = x.clone().requires_grad_()

    check_index(x, y, (slice(None), [0], [0]))
    check_index(x, y, ([0], [0], slice(None)))
    check_index(x, y, (slice(None), [0, 1, 2], [0]))
    check_index(x, y, ([0, 1, 2], [0], slice(None)))
    check_index(x, y, (slice(None), [1, 2], [2, 1]))
    check_index(x, y, ([1, 2], [2, 1], slice(None)))
    check_index(x, y, (slice(None), [[1, 2], [2, 0]], [[0, 1], [2, 3]]))
    check_index(x, y, ([[1, 2], [3, 0]], [[0, 1], [2, 2]], slice(None)))
    check_index(x, y, (slice(None), slice(None), [2, 1]))
    check_index(x, y, (slice(None), [2, 1], slice(None)))
    check_index(x, y, ([2, 1], slice(None), slice(None)))

    # advanced indexing, with less dim, or ellipsis
    check_index(x, y, ([0],))
    check_index(x, y, ([0], slice(None)))
    check_index(x, y, ([0], Ellipsis))
    check_index(x, y, ([1, 2], [0, 1]))
    check_index(x, y, ([1, 2], [0, 1], Ellipsis))
    check_index(x, y, (Ellipsis, [1, 2], [0, 1]))


def test_indexing_duplicates(T):
    torch, self = T.torch, T
    x = torch.arange(1.0, 17).view(4, 4)
    y = x.clone().requires_grad_()  # port: Variable(x, requires_grad=True)

    idx = torch.tensor([1, 1, 3, 2, 1, 2])
    y[idx].sum().backward()
    expected_grad = torch.zeros(4, 4)
    for i in idx:
        expected_grad[i] += 1
    self.assertEqual(y.grad, expected_grad)

    # with advanced indexing
    x = torch.arange(1.0, 17).view(4, 4)
    y = x.clone().requires_grad_()

    idx = ([1, 1, 3, 2, 1, 2], [0])  # port: a tuple (a list of lists indexes as a tuple in torch)
    y[idx].sum().backward()
    expected_grad = torch.zeros(4, 4)
    for i in idx[0]:
        for j in idx[1]:
            expected_grad[i][j] += 1

    self.assertEqual(y.grad, expected_grad)

    x = torch.arange(1.0, 17).view(4, 4)
    y = x.clone().requires_grad_()
    idx = ([[1, 2], [0, 0]], [[0, 1], [1, 1]])
    y[idx].sum().backward()
    expected_grad = torch.tensor([[0.0, 2, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]])
    self.assertEqual(y.grad, expected_grad)

    x = torch.arange(1.0, 65).view(4, 4, 4)
    y = x.clone().requires_grad_()

    idx = ([1, 1, 1], slice(None), slice(None))
    y[idx].sum().backward()
    expected_grad = torch.empty(4, 4, 4).zero_()
    expected_grad[1].fill_(3)
    self.assertEqual(y.grad, expected_grad)


def test_stack(T):
    torch, self = T.torch, T
    x = torch.randn(10, 10, requires_grad=True)
    y = torch.randn(10, 10, requires_grad=True)
    z = torch.randn(10, 10, requires_grad=True)
    stacked = torch.stack([x, y, z], 0)
    grad = torch.randn(3, 10, 10)
    stacked.backward(grad)
    self.assertEqual(x.grad, grad[0])
    self.assertEqual(y.grad, grad[1])
    self.assertEqual(z.grad, grad[2])


def test_cat(T):
    # port: test_hstack's second half, written with torch.cat (the op hstack calls for 1-D inputs)
    torch, self = T.torch, T
    x = torch.randn(10, requires_grad=True)
    y = torch.randn(10, requires_grad=True)
    z = torch.randn(10, requires_grad=True)
    stacked = torch.cat([x, y, z])
    grad = torch.randn(30)
    stacked.backward(grad)
    self.assertEqual(x.grad, grad[0:10])
    self.assertEqual(y.grad, grad[10:20])
    self.assertEqual(z.grad, grad[20:30])


def test_unbind(T):
    torch, self = T.torch, T
    stacked = torch.randn(3, 10, 10, requires_grad=True)
    x, y, z = stacked.unbind()
    grad = torch.randn(3, 10, 10)
    torch.autograd.backward([x, y, z], grad.unbind())
    self.assertEqual(stacked.grad, grad)
    # check that it works with only one gradient provided (#9977)
    for i in range(3):
        stacked = torch.randn(3, 10, 10, requires_grad=True)
        outs = stacked.unbind()
        gi = grad.unbind()[i]
        (g,) = torch.autograd.grad(outs[i], stacked, gi)
        g_expected = torch.stack([gi if j == i else torch.zeros_like(gi) for j in range(3)], dim=0)
        self.assertEqual(g, g_expected)


def test_fill(T):
    torch, self = T.torch, T
    root = torch.randn(4, 5, requires_grad=True)

    def func(root):
        x = root.clone()
        x.fill_(2)
        return x

    # port: gradcheck(func, [root]) replaced by the gradient it checks: fill_ cuts every path to root
    func(root).sum().backward()
    self.assertEqual(root.grad, torch.zeros(4, 5))


def test_unused_output(T):
    torch, self = T.torch, T
    x = torch.randn(10, 10, requires_grad=True)
    outputs = [x[2 * i : 2 * i + 2] for i in range(5)]  # port: x.chunk(5) spelled as its slices
    o = outputs[2]
    o = o * 4 + 2
    o.sum().backward()
    expected_grad = torch.zeros(10, 10)
    expected_grad[4:6] = 4
    self.assertEqual(x.grad, expected_grad)

    with torch.no_grad():
        x.grad.zero_()
    grad_output = torch.randn(2, 10)
    outputs = [x[2 * i : 2 * i + 2] for i in range(5)]
    outputs[0].backward(grad_output)
    expected_grad = torch.zeros(10, 10)
    expected_grad[:2] = grad_output
    self.assertEqual(x.grad, expected_grad)


def test_detach(T):
    torch, self = T.torch, T
    x = torch.randn(10, 10, requires_grad=True)
    y = x + 2
    y = y.detach()
    z = y * 4 + 2
    self.assertFalse(y.requires_grad)
    self.assertFalse(z.requires_grad)

    x = torch.randn(10, 10, requires_grad=True)
    y = x * 2
    y = y.detach()
    self.assertFalse(y.requires_grad)
    self.assertIsNone(y.grad_fn)
    z = x + y
    z.sum().backward()
    # This is an incorrect gradient, but we assume that's what the user
    # wanted. detach() is an advanced option.
    self.assertEqual(x.grad, torch.ones(10, 10))

    # in-place detach
    x = torch.randn(10, 10, requires_grad=True)
    y = torch.randn(10, 10, requires_grad=True)
    a = x * 2
    (y + a).sum().backward(retain_graph=True)
    a.detach_()
    self.assertFalse(a.requires_grad)
    (y + a).sum().backward()  # this won't backprop to x
    self.assertEqual(x.grad, torch.ones(10, 10) * 2)
    self.assertEqual(y.grad, torch.ones(10, 10) * 2)
    # port: the narrow()-view part is left out (tracer's views are copies but for basic slicing)


def _test_type_conversion_backward(T, t):
    torch, self = T.torch, T
    fvar = t(torch.randn(5, 5).float()).requires_grad_()  # port: Variable(..., requires_grad=True)
    fvar.double().sum().backward()
    self.assertEqual(fvar.grad, torch.ones_like(fvar))
    self.assertEqual(fvar.grad.dtype, fvar.dtype)  # port: type() compared through dtype
    dvar = t(torch.randn(5, 5).double()).requires_grad_()
    dvar.float().sum().backward()
    self.assertEqual(dvar.grad, torch.ones_like(dvar))
    self.assertEqual(dvar.grad.dtype, dvar.dtype)


def test_type_conversions(T):
    # port: the CUDA and legacy-type-name parts are left out
    _test_type_conversion_backward(T, lambda x: x)


def test_to_dtype_backward(T):
    # port: the ToCopyBackward0 case of test_type_conversions, through .to(dtype)
    torch, self = T.torch, T
    x = torch.randn(3, dtype=torch.float32, requires_grad=True)
    y = x.to(torch.float64)
    self.assertEqual(type(y.grad_fn).__name__, "ToCopyBackward0")
    (y * 2).sum().backward()
    self.assertEqual(x.grad.dtype, torch.float32)
    self.assertEqual(x.grad, torch.full((3,), 2.0))


def test_isolated_node(T):
    torch = T.torch
    x = torch.randn(5, 5, requires_grad=True)
    y = torch.randn(5, 5, requires_grad=True)

    a = x + y
    b = torch.max(a, 1, True)[1].repeat(1, 5).double()
    o = (b + a).sum()
    o.backward()


def test_shape(T):
    torch, self = T.torch, T
    x = torch.randn(3, 4)
    self.assertEqual(2, len(x.shape))
    self.assertEqual(x.shape[0], 3)
    self.assertEqual(x.shape[1], 4)


def test_numpy_requires_grad(T):
    torch, self = T.torch, T
    x = torch.randn(2, 2, requires_grad=True)
    err_msg_outputs = r"Can't call numpy\(\) on Tensor that requires grad. Use tensor.detach\(\).numpy\(\) instead."
    with self.assertRaisesRegex(RuntimeError, err_msg_outputs):
        x.numpy()

    with torch.no_grad():
        x.numpy()

    x = torch.randn(2, 2)
    x.numpy()

    with torch.no_grad():
        x.numpy()


def test_requires_grad_int_tensor(T):
    # port: the integer case of test_requires_grad_factory
    torch, self = T.torch, T
    x = torch.tensor([1, 2, 3])
    with self.assertRaisesRegex(RuntimeError, "floating point"):
        x.requires_grad_()


def test_hooks(T):
    torch, self = T.torch, T
    x = torch.ones(5, 5, requires_grad=True)
    y = torch.ones(5, 5) * 4
    y.requires_grad_(True)

    counter = [0]

    def bw_hook(inc, grad):
        self.assertIsInstance(grad, torch.Tensor)
        counter[0] += inc

    z = x**2 + x * 2 + x * y + y
    x.register_hook(lambda *args: bw_hook(0, *args))
    test = z.register_hook(lambda *args: bw_hook(1, *args))
    z.backward(torch.ones(5, 5), retain_graph=True)
    self.assertEqual(counter[0], 1)

    test2 = z.register_hook(lambda *args: bw_hook(2, *args))
    z.backward(torch.ones(5, 5), retain_graph=True)
    self.assertEqual(counter[0], 4)

    test2.remove()
    z.backward(torch.ones(5, 5), retain_graph=True)
    self.assertEqual(counter[0], 5)

    def bw_hook_modify(grad):
        return grad.mul(2)

    test.remove()
    z.register_hook(bw_hook_modify)
    with torch.no_grad():
        y.grad.zero_()
    z.backward(torch.ones(5, 5), retain_graph=True)
    self.assertEqual(y.grad, (x + 1) * 2)

    y.register_hook(bw_hook_modify)
    with torch.no_grad():
        y.grad.zero_()
    z.backward(torch.ones(5, 5))
    self.assertEqual(y.grad, (x + 1) * 4)


def test_hook_edge_case_when_called_with_grad(T):
    # grad executes the tensor hooks of the next node but not
    # grad_fn pre hooks or the post hooks
    torch, self = T.torch, T
    a = torch.tensor(1.0, requires_grad=True)
    b = a * 2
    c = b * 2

    tensor_hook_count = [0]
    prehook_count = [0]
    posthook_count = [0]

    def reset_counts():
        nonlocal tensor_hook_count, prehook_count, posthook_count
        tensor_hook_count = [0]
        prehook_count = [0]
        posthook_count = [0]

    def tensor_prehook(g):
        tensor_hook_count[0] += 1

    def prehook(g):
        prehook_count[0] += 1

    def posthook(gI, gO):
        posthook_count[0] += 1

    a.register_hook(tensor_prehook)
    b.register_hook(tensor_prehook)
    c.register_hook(tensor_prehook)

    c.grad_fn.register_prehook(prehook)
    b.grad_fn.register_prehook(prehook)
    a.register_hook(tensor_prehook)  # port: the original registers prehooks on a leaf's grad accumulator too

    c.grad_fn.register_hook(posthook)
    b.grad_fn.register_hook(posthook)

    torch.autograd.grad(c, inputs=(b), retain_graph=True)
    self.assertEqual(tensor_hook_count[0], 2)
    self.assertEqual(prehook_count[0], 1)
    self.assertEqual(posthook_count[0], 1)

    reset_counts()
    torch.autograd.grad(c, inputs=(a, b), retain_graph=True)
    self.assertEqual(tensor_hook_count[0], 4)
    self.assertEqual(prehook_count[0], 2)
    self.assertEqual(posthook_count[0], 2)


def test_grad_fn_prehooks(T):
    torch, self = T.torch, T
    for _ in range(2):  # port: the loop over both Node kinds collapsed to one spelling
        a = torch.tensor(1.0, requires_grad=True)
        b = a * 2  # port: a.sin() as a * 2 (tracer has no sin)

        def prehook(gO):
            return (gO[0] * 2,)

        handle = b.grad_fn.register_prehook(prehook)
        b.backward()
        first = a.grad.clone()
        handle.remove()
        with torch.no_grad():
            a.grad.zero_()
        b2 = a * 2
        b2.backward()
        self.assertEqual(first, a.grad * 2)


def test_tensor_hooks_inplace(T):
    # Check that the second hook gets registered to the new version of tensor
    torch, self = T.torch, T
    count1 = [0]
    count2 = [0]

    def fn1(grad):
        count1[0] += 1
        # x2 from mul, x2 from fn2
        self.assertEqual(grad, torch.tensor(4.0))
        return grad * 2

    def fn2(grad):
        count2[0] += 1
        self.assertEqual(grad, torch.tensor(1.0))
        return grad * 2

    a = torch.tensor(1.0, requires_grad=True)
    b = a.clone()
    b.register_hook(fn1)
    b.mul_(2)
    b.register_hook(fn2)
    b.sum().backward()
    self.assertEqual(count1[0], 1)
    self.assertEqual(count2[0], 1)
    self.assertEqual(a.grad, torch.tensor(8.0))


def test_post_accumulate_grad_hook_on_non_leaf(T):
    torch, self = T.torch, T

    def hook(tensor):
        tensor.sub_(1.0)

    leaf = torch.rand(3, requires_grad=True)
    non_leaf = 2.0 * leaf

    with self.assertRaisesRegex(RuntimeError, "post accumulate grad hooks cannot be registered on non-leaf tensors"):
        non_leaf.register_post_accumulate_grad_hook(hook)


def test_post_accumulate_grad_hook_multiple_hooks(T):
    torch, self = T.torch, T

    def hook1(tensor):
        tensor.grad.sub_(tensor.grad.norm() if hasattr(tensor.grad, "norm") else 0.0)

    def hook2(tensor):
        tensor.grad.mul_(4.0)

    tensor = torch.rand(3, 3, requires_grad=True)
    tensor_ref = tensor.clone().detach()
    tensor.register_post_accumulate_grad_hook(hook2)  # port: hook1 (norm) left out; hook2 twice
    tensor.register_post_accumulate_grad_hook(hook2)
    tensor.sum().backward()
    self.assertEqual(tensor.grad, torch.ones(3, 3) * 16)
    self.assertEqual(tensor, tensor_ref)


def test_post_accumulate_grad_hook_multiple_tensors(T):
    torch, self = T.torch, T

    def hook(tensor):
        tensor.grad.sub_(2.0)

    tensor1 = torch.rand(3, 3, requires_grad=True)
    tensor1_ref = tensor1.clone().detach()
    tensor2 = torch.rand(5, 5, requires_grad=True)
    tensor2_ref = tensor2.clone().detach()
    tensor1.register_post_accumulate_grad_hook(hook)
    tensor2.register_post_accumulate_grad_hook(hook)
    tensor2.detach().mul_(2.0)
    # port: the original reads tensor2's data after an in-place op on a detached alias
    tensor1.sum().backward()
    tensor2.sum().backward()

    # both tensors should have been modified
    self.assertEqual(tensor1.grad, -torch.ones(3, 3))
    self.assertEqual(tensor2.grad, -torch.ones(5, 5))
    self.assertEqual(tensor1, tensor1_ref)
    self.assertEqual(tensor2, tensor2_ref * 2)


def test_post_accumulate_grad_hook_returns_not_None(T):
    torch, self = T.torch, T

    def bad_hook(tensor):
        return tensor.grad

    tensor = torch.rand(2, 3, requires_grad=True)
    tensor.register_post_accumulate_grad_hook(bad_hook)
    # should error!
    with self.assertRaisesRegex(RuntimeError, "hooks should return None."):
        tensor.sum().backward()


def test_post_accumulate_grad_hook_e2e(T):
    # port: the SGD step run from the hook, on a single parameter instead of an nn.Module
    torch, self = T.torch, T
    lr = 0.01
    p = torch.rand(4, requires_grad=True)
    p_ref = p.clone().detach().requires_grad_()

    def step(tensor):
        with torch.no_grad():
            tensor.sub_(lr * tensor.grad)
        tensor.grad = None

    p.register_post_accumulate_grad_hook(step)
    (p * p).sum().backward()
    (p_ref * p_ref).sum().backward()
    with torch.no_grad():
        p_ref.sub_(lr * p_ref.grad)
    self.assertEqual(p, p_ref)
    self.assertIsNone(p.grad)


def test_deepcopy_param_hooks(T):
    # port: test_post_accumulate_grad_hook_gets_cleaned_up's deepcopy part: a copy does not share hooks
    torch, self = T.torch, T
    calls = []
    p = torch.ones(2, requires_grad=True)
    p.register_post_accumulate_grad_hook(lambda t: calls.append(1))
    q = deepcopy(p)
    q.sum().backward()
    self.assertEqual(len(calls), 0)


def test_x_eq_y_elementwise(T):
    # port: the comparison rule test_mark_non_differentiable relies on: `==` compares entries, records nothing
    torch, self = T.torch, T
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = torch.tensor([1.0, 0.0, 3.0])
    eq = x == y
    self.assertEqual(eq, torch.tensor([True, False, True]))
    self.assertFalse(eq.requires_grad)
    self.assertIsNone(eq.grad_fn)
    self.assertEqual(x > 1.5, torch.tensor([False, True, True]))
    self.assertEqual(x != y, torch.tensor([False, True, False]))


def test_slice_is_a_view(T):
    # port: the view rule test_no_requires_grad_inplace relies on: x[:] shares x's memory and version
    torch, self = T.torch, T
    x = torch.zeros(3)
    v = x[:]
    v.add_(1)
    self.assertEqual(x, torch.ones(3))
    self.assertEqual(x._version, v._version)


def test_unsqueeze_squeeze_view_as(T):
    # port: the view ops test_view_ops... differentiates, one composition of each
    torch, self = T.torch, T
    x = torch.randn(3, requires_grad=True)
    y = x.unsqueeze(0).unsqueeze(-1)
    self.assertEqual(tuple(y.shape), (1, 3, 1))
    z = y.squeeze()
    self.assertEqual(tuple(z.shape), (3,))
    w = z.view_as(torch.zeros(3, 1))
    (w * torch.tensor([[1.0], [2.0], [3.0]])).sum().backward()
    self.assertEqual(x.grad, torch.tensor([1.0, 2.0, 3.0]))
    self.assertEqual(type(y.grad_fn).__name__, "UnsqueezeBackward0")
    self.assertEqual(type(z.grad_fn).__name__, "SqueezeBackward0")


def test_top_level_functions(T):
    # port: torch.pow / torch.matmul / torch.stack / torch.cat as test_autograd spells them
    torch, self = T.torch, T
    a = torch.randn(2, 3, requires_grad=True)
    b = torch.randn(3, 2, requires_grad=True)
    out = torch.matmul(torch.pow(a, 2), b)
    both = torch.cat([torch.stack([out, out]).sum(0), out])
    both.sum().backward()
    self.assertEqual(b.grad, ((a * a).sum(0) * 3).view(3, 1).expand(3, 2))
