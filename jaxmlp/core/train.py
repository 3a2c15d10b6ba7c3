"""Pure, jitted training and evaluation.

State is one pytree (`TrainState`); every function here maps arrays to arrays.
Randomness is derived, never stored: the permutation of epoch `e` and the
dropout / augmentation key of step `s` are folded out of the root key (see
`random_stream`). So a run resumed from any step boundary replays exactly
the same numbers as one that never stopped.

An epoch is `chunks_per_epoch` calls of one compiled `lax.scan` over batches;
the data stays on the device and is indexed there, so the host only wakes up
between chunks (to draw a progress bar or notice Ctrl-C). Steps past the end
of the epoch in the last chunk are skipped by a `lax.cond`, so every chunk has
the same shape and compiles once.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple, Protocol

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh

from jaxmlp.config import TrainConfig
from jaxmlp.core.model import MLP
from jaxmlp.core.optim import make_optimizer, make_schedule
from jaxmlp.core.parallel import batch_sharded, put_replicated, replicated

# Each chunk ends in a host round trip (about a millisecond); ~250 steps per chunk keeps that small
# while Ctrl-C and the progress bar still respond within a fraction of a second.
AUTO_CHUNK_STEPS = 250


class DataShape(Protocol):
    """What the core reads of a dataset to build a run (`jaxmlp.data.datasets.Dataset` has all of it)."""

    y_train: np.ndarray
    image_shape: tuple[int, int]
    background: float
    num_classes: int

    @property
    def num_features(self) -> int: ...


class TrainState(NamedTuple):
    params: nnx.State
    batch_stats: nnx.State
    opt_state: optax.OptState
    step: jax.Array  # int32 scalar: optimizer steps taken so far
    key: jax.Array  # uint32[2] raw root key; every random draw is folded out of it


@dataclasses.dataclass(frozen=True)
class Program:
    """The static half of a run: model structure, optimizer and the shapes that fix compilation."""

    graphdef: nnx.GraphDef
    tx: optax.GradientTransformation
    config: TrainConfig
    num_train: int
    image_shape: tuple[int, int]
    background: float
    mesh: Mesh | None = None  # data parallelism: batches are split along its "data" axis

    @property
    def steps_per_epoch(self) -> int:
        return steps_per_epoch(self.num_train, self.config.batch_size)

    @property
    def chunk_steps(self) -> int:
        chunks = self.config.chunks_per_epoch or math.ceil(self.steps_per_epoch / AUTO_CHUNK_STEPS)
        return math.ceil(self.steps_per_epoch / chunks)


# XLA:CPU spends most of a small program's compile time in LLVM's optimizer. Two programs that run once per run or
# epoch (initial state, shuffle's keys) are compiled with less of it, so the first epoch starts sooner. Level 2
# computes the initial state's very bits at the default level 3 (tests/test_train.py checks); lower levels do not,
# so they are kept for the shuffle, whose output is integers: level 1, which compiles its keys in about 0.3 s more than
# level 0 (beside the training step, which takes longer) and draws them about ten times faster, every epoch (60,000
# samples: 1 ms against 6 to 12 ms on 2 busy cores).
# Evaluation and the probe (level 2 changes a LayerNorm network's gradient norm in its last bit) and the training
# step keep full optimization.
RUN_RARELY = {"xla_backend_optimization_level": 2}
INTEGERS_ONLY = {"xla_backend_optimization_level": 1}


def steps_per_epoch(num_train: int, batch_size: int) -> int:
    """Whole batches per epoch: the remainder that does not fill a batch sits the epoch out (a new one each epoch)."""
    return num_train // batch_size


def random_stream(key_data: jax.Array, name: str, index: jax.Array | int) -> jax.Array:
    """The key for draw `index` of one named stream: "epoch" (shuffling), "step" (dropout, augmentation), "probe".

    Each stream is folded out of the root separately, so epoch 5's shuffle and step 5's dropout never share a key.
    """
    stream = jax.random.fold_in(jax.random.wrap_key_data(key_data), STREAMS.index(name))
    return jax.random.fold_in(stream, index)


STREAMS = ("epoch", "step", "probe")


def build_model(config: TrainConfig, num_features: int, num_classes: int, key: jax.Array) -> MLP:
    return MLP(
        num_features,
        config.hidden,
        num_classes,
        activation=config.activation,
        dropout=config.dropout,
        norm=config.norm,
        dtype=jnp.bfloat16 if config.bf16 else None,
        rngs=nnx.Rngs(params=key),
    )


def initial_state(config: TrainConfig, num_features: int, num_classes: int, tx) -> TrainState:
    """The state before the first step, built by one compiled program.

    Built eagerly, Flax compiles each initializer's small ops one by one (about 30 XLA programs, seconds
    before the first epoch); under `jax.jit` they are one program, and the random bits are the same."""
    build = jax.jit(_state_builder(config, num_features, num_classes, tx), compiler_options=RUN_RARELY)
    return build(jax.random.key(config.seed))


def state_shapes(config: TrainConfig, num_features: int, num_classes: int, tx, mesh: Mesh | None) -> TrainState:
    """The shapes, dtypes and placement of `initial_state`'s arrays, computed without computing them
    (so the training step can be compiled while the state is being built)."""
    shapes = jax.eval_shape(_state_builder(config, num_features, num_classes, tx), jax.random.key(config.seed))
    sharding = replicated(mesh) if mesh is not None else None
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding), shapes)


def _state_builder(config: TrainConfig, num_features: int, num_classes: int, tx):
    def make(key: jax.Array) -> TrainState:
        init_key, run_key = jax.random.split(key)
        model = build_model(config, num_features, num_classes, init_key)
        _, params, batch_stats = nnx.split(model, nnx.Param, nnx.BatchStat)
        step = jnp.zeros((), jnp.int32)
        return TrainState(params, batch_stats, tx.init(params), step, jax.random.key_data(run_key))

    return make


def make_program(config: TrainConfig, ds: DataShape, mesh: Mesh | None = None) -> Program:
    """What stays fixed during a run: the model's structure (traced abstractly, no arrays), optimizer, data shape."""
    steps = steps_per_epoch(len(ds.y_train), config.batch_size)
    warmup = int(min(config.warmup_epochs, config.epochs) * steps)  # longer than the run is the whole run
    lr = make_schedule(config.lr, config.schedule, steps * config.epochs, warmup)
    tx = make_optimizer(
        config.optimizer, lr, momentum=config.momentum, weight_decay=config.weight_decay, clip_norm=config.clip_norm
    )
    abstract = nnx.eval_shape(lambda: build_model(config, ds.num_features, ds.num_classes, jax.random.key(0)))
    graphdef, _, _ = nnx.split(abstract, nnx.Param, nnx.BatchStat)
    return Program(graphdef, tx, config, len(ds.y_train), ds.image_shape, ds.background, mesh)


def init(config: TrainConfig, ds: DataShape, mesh: Mesh | None = None) -> tuple[Program, TrainState]:
    """Build the model and optimizer for `config` on `ds`; return the static program and the initial state.

    With a `mesh`, the state is replicated over its devices and every batch is split across them.
    """
    program = make_program(config, ds, mesh)
    state = initial_state(config, ds.num_features, ds.num_classes, program.tx)
    return program, put_replicated(state, mesh) if mesh is not None else state


# --- pure pieces -------------------------------------------------------------


def random_shift(key: jax.Array, x: jax.Array, image_shape: tuple[int, int], max_shift: int, fill: float) -> jax.Array:
    """Translate each flattened image by up to `max_shift` pixels in x and y, filling with `fill`."""
    h, w = image_shape
    s = max_shift
    imgs = jnp.pad(x.reshape(-1, h, w), ((0, 0), (s, s), (s, s)), constant_values=fill)
    offsets = jax.random.randint(key, (x.shape[0], 2), 0, 2 * s + 1)
    crop = jax.vmap(lambda im, o: jax.lax.dynamic_slice(im, (o[0], o[1]), (h, w)))
    return crop(imgs, offsets).reshape(x.shape)


def cross_entropies(logits: jax.Array, labels: jax.Array, smoothing: float = 0.0) -> jax.Array:
    """Per-sample softmax cross-entropy against integer labels; their mean is
    `torch.nn.CrossEntropyLoss(label_smoothing=smoothing)`. Training and evaluation both use it."""
    targets = jax.nn.one_hot(labels, logits.shape[-1])
    return optax.softmax_cross_entropy(logits, optax.smooth_labels(targets, smoothing) if smoothing else targets)


def _path_name(path) -> str:
    return ".".join(str(getattr(k, "key", getattr(k, "name", k))) for k in path if getattr(k, "name", None) != "value")


def _linear_leaves(tree, leaf: str) -> dict[str, jax.Array]:
    """The `leaf` of every Linear by layer name, in the network's order: hidden.0, hidden.1, ..., hidden.10, head."""
    found = {}
    for path, value in jax.tree_util.tree_leaves_with_path(tree):
        name = _path_name(path)
        layer = name.rsplit(".", 1)[0]
        if name.endswith("." + leaf) and (layer == "head" or layer.startswith("hidden.")):
            found[layer] = value
    depth = lambda layer: float("inf") if layer == "head" else int(layer.split(".")[1])
    return dict(sorted(found.items(), key=lambda kv: depth(kv[0])))


def linear_kernels(tree) -> dict[str, jax.Array]:
    """The kernel (in, out) of every Linear, input layer first: {"hidden.0": ..., ..., "head": ...}."""
    return _linear_leaves(tree, "kernel")


def linear_biases(tree) -> dict[str, jax.Array]:
    """The bias of every Linear, in the same order and under the same names as `linear_kernels`."""
    return _linear_leaves(tree, "bias")


def layer_stats(params, grads, updates) -> dict[str, jax.Array]:
    """Per Linear layer: the gradient norm and |update| / |param| (a healthy ratio is around 1e-3)."""
    p, g, u = linear_kernels(params), linear_kernels(grads), linear_kernels(updates)
    norm = lambda a: jnp.sqrt(jnp.sum(jnp.square(a)))
    return {
        "grad_norm": jnp.stack([norm(g[k]) for k in p]),
        "update_ratio": jnp.stack([norm(u[k]) / (norm(p[k]) + 1e-12) for k in p]),
    }


def training_loss(program: Program, params, batch_stats, x: jax.Array, y: jax.Array, dropout_key) -> tuple:
    """Mean training-mode loss of `params` on (x, y), and (logits, the batch statistics it updated).

    What `train_step` and the layer-statistics probe differentiate; with `dropout_key` None nothing is drawn.
    """
    model = nnx.merge(program.graphdef, params, batch_stats, copy=True)
    logits = model(x, train=True, rngs=nnx.Rngs(dropout=dropout_key) if dropout_key is not None else None)
    loss = cross_entropies(logits, y, program.config.label_smoothing).mean()
    return loss, (logits, nnx.state(model, nnx.BatchStat))


def train_step(program: Program, state: TrainState, x: jax.Array, y: jax.Array) -> tuple[TrainState, dict]:
    """One optimizer step on one batch. Returns the new state and the step's loss and number correct."""
    cfg = program.config
    if program.mesh is not None:  # each device takes its slice of the batch; XLA all-reduces the gradients
        x = jax.lax.with_sharding_constraint(x, batch_sharded(program.mesh))
        y = jax.lax.with_sharding_constraint(y, batch_sharded(program.mesh))
    dropout_key = None
    if cfg.augment_shift or cfg.dropout:  # static: a model without randomness pays nothing for keys
        aug_key, dropout_key = jax.random.split(random_stream(state.key, "step", state.step))
        if cfg.augment_shift:
            x = random_shift(aug_key, x, program.image_shape, cfg.augment_shift, program.background)

    loss_fn = lambda params: training_loss(program, params, state.batch_stats, x, y, dropout_key)
    (loss, (logits, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = program.tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    stats = {"loss": loss, "correct": jnp.sum(jnp.argmax(logits, -1) == y)}
    return TrainState(params, batch_stats, opt_state, state.step + 1, state.key), stats


def make_probe(program: Program):
    """Layer statistics of the step the optimizer *would* take on a fixed probe batch; nothing is applied.

    Measured between chunks instead of inside the scan, so the hot loop pays nothing for them
    (inside, they cost about 20% of the steps' time on the small MLP).
    """

    def probe(state: TrainState, x: jax.Array, y: jax.Array) -> dict:
        key = random_stream(state.key, "probe", state.step)
        loss_fn = lambda params: training_loss(program, params, state.batch_stats, x, y, key)
        grads, _ = jax.grad(loss_fn, has_aux=True)(state.params)
        updates, _ = program.tx.update(grads, state.opt_state, state.params)
        return layer_stats(state.params, grads, updates)

    return jax.jit(probe)


def epoch_permutation(key_data: jax.Array, epoch: int, num_train: int, steps: int, batch_size: int) -> jax.Array:
    """The sample order of one epoch; the remainder that does not fill a batch is left out this epoch."""
    return jax.random.permutation(random_stream(key_data, "epoch", epoch), num_train)[: steps * batch_size]


def _sort_keys(key_data: jax.Array, epoch: jax.Array, num_train: int) -> jax.Array:
    """The random keys `jax.random.permutation` sorts by in `epoch_permutation`, one row per round of sorting."""
    key, rows = random_stream(key_data, "epoch", epoch), []
    for _ in range(math.ceil(3 * math.log(max(1, num_train)) / math.log(np.iinfo(np.uint32).max))):
        key, subkey = jax.random.split(key)  # as jax.random.permutation's shuffle draws them
        rows.append(jax.random.bits(subkey, (num_train,), jnp.uint32))
    return jnp.stack(rows)


_sort_keys_program = jax.jit(_sort_keys, static_argnums=2, compiler_options=INTEGERS_ONLY)


def shuffle(key_data: jax.Array, epoch: int, num_train: int, steps: int, batch_size: int) -> jax.Array:
    """`epoch_permutation`, the very same integers, what the loop calls once an epoch.

    XLA draws the keys and NumPy does the stable sorts: XLA:CPU's sort calls its comparator per comparison,
    about four times NumPy's time on 60,000 samples (`tests/test_train.py` checks the two agree). Each sort is
    NumPy's default (SIMD, unstable) sort of 64-bit keys whose low half is the position: no two are equal, so it
    puts tied 32-bit keys in position order exactly as a stable sort does, in about a fifth of its time."""
    order = np.arange(num_train, dtype=np.int32)
    position = np.arange(num_train, dtype=np.uint64)
    for keys in np.asarray(_sort_keys_program(key_data, epoch, num_train)):
        order = order[np.argsort((keys.astype(np.uint64) << np.uint64(32)) | position)]
    return jax.device_put(order[: steps * batch_size])


def make_train_chunk(program: Program):
    """Compile-once function: `chunk_steps` steps starting at batch `start` of the epoch order `perm`.

    Returns the new state and, per step, a dict of arrays: loss, correct, and `valid`
    (False for the padding steps past the epoch's end).
    """
    bs, n_steps, chunk = program.config.batch_size, program.steps_per_epoch, program.chunk_steps

    def run_chunk(state: TrainState, x: jax.Array, y: jax.Array, perm: jax.Array, start: jax.Array):
        def body(state, i):
            def step(state):
                idx = jax.lax.dynamic_slice_in_dim(perm, i * bs, bs)
                state, stats = train_step(program, state, x[idx], y[idx])
                return state, {**stats, "valid": jnp.bool_(True)}

            def skip(state):  # past the epoch's last batch: leave the state alone
                shapes = jax.eval_shape(lambda s: train_step(program, s, x[:bs], y[:bs])[1], state)
                zeros = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), shapes)
                return state, {**zeros, "valid": jnp.bool_(False)}

            if n_steps % chunk == 0:  # every chunk is full: no step ever needs skipping
                return step(state)
            return jax.lax.cond(i < n_steps, step, skip, state)

        return jax.lax.scan(body, state, start + jnp.arange(chunk))

    return jax.jit(run_chunk, donate_argnums=0)


@dataclasses.dataclass(frozen=True)
class EvalSet:
    """A split padded to whole evaluation batches, with a mask so every real sample counts exactly once."""

    x: jax.Array  # (num_batches, batch, D)
    y: jax.Array  # (num_batches * batch,)
    mask: jax.Array
    size: int

    @classmethod
    def from_arrays(cls, x: np.ndarray, y: np.ndarray, batch: int = 1000, mesh: Mesh | None = None) -> EvalSet:
        n = len(y)
        batch = min(batch, n)
        pad = -n % batch
        xp = np.concatenate([x, np.zeros((pad, x.shape[1]), x.dtype)]).reshape(-1, batch, x.shape[1])
        yp = np.concatenate([y, np.zeros(pad, y.dtype)])
        mask = np.arange(n + pad) < n
        return cls(*put_replicated((xp, yp, mask), mesh), n)


def make_evaluate(program: Program):
    """Compiled evaluation in eval mode (no dropout, running batch statistics)."""

    def evaluate(params, batch_stats, x, y, mask):
        model = nnx.merge(program.graphdef, params, batch_stats, copy=True)
        logits = jax.lax.map(lambda xb: model(xb, train=False), x).reshape(-1, model.head.out_features)
        losses = cross_entropies(logits, y)
        preds = jnp.argmax(logits, -1)
        probs = jax.nn.softmax(logits)
        return {
            "loss_sum": jnp.sum(jnp.where(mask, losses, 0.0)),
            "correct": jnp.sum(jnp.where(mask, preds == y, False)),
            "predictions": preds,
            "confidence": jnp.max(probs, -1),
        }

    jitted = jax.jit(evaluate)

    def run(state: TrainState, split: EvalSet) -> dict:
        out = jax.device_get(jitted(state.params, state.batch_stats, split.x, split.y, split.mask))
        return {
            "loss": float(out["loss_sum"]) / split.size,
            "accuracy": float(out["correct"]) / split.size,
            "predictions": out["predictions"][: split.size],
            "confidence": out["confidence"][: split.size],
        }

    return run


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts[i, j] = samples of true class i predicted as j."""
    m = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(m, (labels, predictions), 1)
    return m
