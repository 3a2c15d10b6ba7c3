import jax
import numpy as np
import pytest

from jaxmlp.config import TrainConfig
from jaxmlp.core.train import EvalSet, confusion_matrix, init, linear_biases, linear_kernels, make_evaluate
from jaxmlp.data.datasets import load_dataset
from jaxmlp.runs.evaluate import evaluate_run
from jaxmlp.runs.lifecycle import RunDir
from jaxmlp.runs.loop import Diverged, Reporting, Saving, fit

TIMING = {"seconds", "samples_per_second"}


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", normalization=TrainConfig().normalization)


def train(tmp_path, ds, name, **kw):
    cfg = TrainConfig(dataset="digits", epochs=4, batch_size=32, hidden=(32,), **kw).validate()
    run = RunDir.create(str(tmp_path / name), cfg)
    return run, fit(cfg, ds, Saving(run), Reporting(progress=False))


def strip(rows):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def test_loss_decreases(tmp_path, digits):
    _, out = train(tmp_path, digits, "a")
    losses = [r["train_loss"] for r in out.metrics]
    assert losses[-1] < 0.5 * losses[0]
    assert out.metrics[-1]["test_accuracy"] > 0.8
    steps = out.steps
    assert len(steps["loss"]) == out.metrics[-1]["step"] == 4 * (len(digits.y_train) // 32)
    assert list(steps["layers"]) == ["hidden.0", "head"]
    assert steps["grad_norm"].shape == (len(steps["stats_step"]), 2) and (steps["grad_norm"] > 0).all()
    assert steps["stats_step"][0] == 0 and (np.diff(steps["stats_step"]) > 0).all()
    assert (steps["update_ratio"] > 0).all() and (steps["update_ratio"] < 1).all()


def test_same_seed_same_metrics_and_params(tmp_path, digits):
    _, a = train(tmp_path, digits, "a", dropout=0.2, augment_shift=1)
    _, b = train(tmp_path, digits, "b", dropout=0.2, augment_shift=1)
    _, c = train(tmp_path, digits, "c", dropout=0.2, augment_shift=1, seed=1)
    assert strip(a.metrics) == strip(b.metrics)
    assert strip(a.metrics) != strip(c.metrics)
    for x, y in zip(jax.tree.leaves(a.state), jax.tree.leaves(b.state)):
        np.testing.assert_array_equal(x, y)


def test_resume_2_plus_2_equals_4_bitwise(tmp_path, digits):
    kw = dict(dropout=0.2, norm="batch", optimizer="adamw", weight_decay=1e-2, schedule="cosine")
    _, full = train(tmp_path, digits, "full", **kw)
    cfg = TrainConfig(dataset="digits", epochs=4, batch_size=32, hidden=(32,), **kw)
    run = RunDir.create(str(tmp_path / "half"), cfg)
    # Train the first 2 epochs of the same 4-epoch schedule, then resume.
    first = fit(cfg, digits, Saving(run, interval=0, stop_after_epochs=2), Reporting(progress=False))
    assert first.status == "interrupted" and len(first.metrics) == 2
    second = fit(cfg, digits, Saving(run, resume=True), Reporting(progress=False))
    assert second.status == "finished"
    assert strip(second.metrics) == strip(full.metrics)
    assert strip(run.history.read_metrics()) == strip(full.metrics)
    for x, y in zip(jax.tree.leaves(second.state), jax.tree.leaves(full.state)):
        np.testing.assert_array_equal(x, y)


def test_eval_counts_every_sample(digits):
    n = 355  # not a multiple of the evaluation batch
    assert len(digits.y_test) == n
    cfg = TrainConfig(hidden=(16,))
    program, state = init(cfg, digits)
    out = make_evaluate(program)(state, EvalSet.from_arrays(digits.x_test, digits.y_test, batch=100))
    assert len(out["predictions"]) == n
    cm = confusion_matrix(digits.y_test, out["predictions"], 10)
    assert cm.sum() == n
    np.testing.assert_array_equal(cm.sum(1), np.bincount(digits.y_test, minlength=10))
    assert out["accuracy"] == pytest.approx(np.trace(cm) / n)


def test_evaluate_run_matches_training_metrics(tmp_path, digits):
    run, out = train(tmp_path, digits, "a")
    report, _ = evaluate_run(run.path)
    assert report.accuracy == pytest.approx(out.metrics[-1]["test_accuracy"])
    assert report.confusion.sum() == len(digits.y_test)


def test_divergence_stops_with_epoch_and_step(tmp_path, digits):
    with pytest.raises(Diverged, match=r"epoch 1, step \d+.*lower --lr"):
        train(tmp_path, digits, "nan", optimizer="sgd", lr=1e12)


def test_linear_kernels_and_biases_come_in_the_networks_order():
    config = TrainConfig(hidden=(3,) * 11).validate()
    ds = load_dataset("digits", normalization=config.normalization)
    _, state = init(config, ds)
    kernels, biases = linear_kernels(state.params), linear_biases(state.params)
    names = [f"hidden.{i}" for i in range(11)] + ["head"]  # hidden.10 after hidden.2, as the layers run
    assert list(kernels) == list(biases) == names
    assert [k.shape for k in kernels.values()] == [(64, 3)] + [(3, 3)] * 10 + [(3, 10)]
    assert [b.shape for b in biases.values()] == [(3,)] * 11 + [(10,)]


@pytest.mark.parametrize("norm", ["none", "batch"])
def test_initial_state_is_the_eagerly_built_model(norm):
    """`initial_state` builds the model under jax.jit; its numbers must be those of Flax's eager construction."""
    import optax
    from flax import nnx

    from jaxmlp.core.train import build_model, initial_state

    config = TrainConfig(hidden=(16, 8), norm=norm, seed=3)
    state = initial_state(config, 64, 10, optax.adam(1e-3))
    init_key, run_key = jax.random.split(jax.random.key(3))
    _, params, batch_stats = nnx.split(build_model(config, 64, 10, init_key), nnx.Param, nnx.BatchStat)
    eager = (params, batch_stats, jax.random.key_data(run_key))
    jitted = (state.params, state.batch_stats, state.key)
    assert jax.tree.structure(eager) == jax.tree.structure(jitted)
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(eager), jax.tree.leaves(jitted)))


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"norm": "batch", "dropout": 0.2, "optimizer": "sgd", "momentum": 0.9},
        {"norm": "layer", "activation": "gelu"},
    ],
)
def test_programs_compiled_with_less_optimization_compute_the_same_bits(digits, monkeypatch, options):
    """The initial state is compiled at `RUN_RARELY`'s level for a sooner first epoch; what it computes (the run's
    starting point) must be bit for bit what a fully optimized program computes, and the probe is unaffected."""
    import jaxmlp.core.train as train

    config = TrainConfig(dataset="digits", hidden=(32, 16), **options).validate()
    program, _ = init(config, digits)
    probe_batch = (digits.x_train[:256], digits.y_train[:256])

    def outputs():
        state = train.initial_state(config, digits.num_features, digits.num_classes, program.tx)
        return jax.tree.leaves((state, jax.device_get(train.make_probe(program)(state, *probe_batch))))

    quick = outputs()
    monkeypatch.setattr(train, "RUN_RARELY", {})
    full = outputs()
    assert all(np.array_equal(a, b) for a, b in zip(quick, full, strict=True))


def test_the_shuffle_program_is_epoch_permutation():
    from jaxmlp.core.train import epoch_permutation, shuffle

    key = jax.random.key_data(jax.random.key(7))
    for epoch in range(3):
        assert np.array_equal(shuffle(key, epoch, 1000, 15, 64), epoch_permutation(key, epoch, 1000, 15, 64))
    # 60,000 samples take two rounds of sorting (and ties among the 32-bit keys, which a stable sort keeps in order)
    for epoch in range(2):
        assert np.array_equal(shuffle(key, epoch, 60_000, 937, 64), epoch_permutation(key, epoch, 60_000, 937, 64))


def test_train_accuracy_is_the_count_of_right_answers_over_the_samples_seen(tmp_path, digits):
    """The epoch row's train_accuracy, recounted independently: replay the epoch's batches through the model in
    train mode, before each step, and count argmax == label over every sample the epoch trained on."""
    from flax import nnx

    from jaxmlp.core.train import initial_state, make_program, shuffle, train_step

    # batch 24: neither the default (64) nor a size a hard-coded divisor would likely be
    cfg = TrainConfig(dataset="digits", epochs=1, batch_size=24, hidden=(16,)).validate()
    row = fit(cfg, digits, reporting=Reporting(progress=False, verbose=False)).metrics[0]
    program = make_program(cfg, digits)
    state = initial_state(cfg, digits.num_features, digits.num_classes, program.tx)
    steps = program.steps_per_epoch
    perm = np.asarray(shuffle(state.key, 0, program.num_train, steps, cfg.batch_size)).reshape(steps, cfg.batch_size)
    step, right = jax.jit(lambda s, x, y: train_step(program, s, x, y)), 0
    for idx in perm:
        x, y = digits.x_train[idx], digits.y_train[idx]
        model = nnx.merge(program.graphdef, state.params, state.batch_stats)
        right += int((np.argmax(model(x, train=True), -1) == y).sum())
        state, _ = step(state, x, y)
    assert row["train_accuracy"] == pytest.approx(right / (steps * cfg.batch_size), abs=1e-12)


def test_every_random_stream_has_keys_of_its_own():
    """Epoch e's shuffle, step s's dropout and the probe's draw never share a key, whatever the index; and a
    stream's key depends on its own index only, so drawing more from one stream moves no other."""
    from jaxmlp.core.train import STREAMS, random_stream

    root = jax.random.key_data(jax.random.key(0))
    draws = {
        (name, i): tuple(np.asarray(jax.random.bits(random_stream(root, name, i), (4,))))
        for name in STREAMS
        for i in range(5)
    }
    assert len(set(draws.values())) == len(draws)  # 15 distinct keys: no two (stream, index) pairs share one
    again = {(name, i): tuple(np.asarray(jax.random.bits(random_stream(root, name, i), (4,)))) for name, i in draws}
    assert again == draws
