"""The checkpoint's manifest layer: a checkpoint whose files differ from the manifest written after its commit is
rejected before orbax reads any of it (neither its items nor their metadata), whatever the error says."""

import os

import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from jaxmlp.errors import ConfigError
from jaxmlp.runs.checkpoint import MANIFEST, Checkpointer

STATE = {"b": jnp.ones(64, jnp.float32), "w": jnp.arange(64 * 64, dtype=jnp.float32).reshape(64, 64)}


@pytest.fixture
def saved(tmp_path):
    """A folder holding checkpoint 1 of STATE, committed with its manifest."""
    folder = tmp_path / "checkpoints"
    writer = Checkpointer(str(folder))
    writer.save(1, STATE, {"epoch": 1})
    writer.close()
    assert (folder / "1" / MANIFEST).is_file()
    return folder


@pytest.fixture
def orbax_reads(monkeypatch):
    """Every call into orbax that reads a checkpoint's items or their metadata, by method name."""
    calls = []
    for name in ("restore", "item_metadata"):
        real = getattr(ocp.CheckpointManager, name)

        def spy(self, *args, _real=real, _name=name, **kwargs):
            calls.append(_name)
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(ocp.CheckpointManager, name, spy)
    return calls


def flip_bytes(path):
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 2, min(len(data), len(data) // 2 + 8)):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def array_files(step_dir):
    """The files holding the arrays' bytes (orbax's OCDBT data files), not its metadata."""
    files = [p for p in (step_dir / "state").rglob("*") if p.is_file() and p.parent.name == "d"]
    assert files, sorted(map(str, step_dir.rglob("*")))
    return files


def damage(step_dir, how):
    if how == "flipped array bytes":  # what the state's own checksum would also catch, a layer later
        for path in array_files(step_dir):
            flip_bytes(path)
    elif how == "flipped meta bytes":
        flip_bytes(step_dir / "meta" / "metadata")  # the loop bookkeeping's JSON
    elif how == "a file removed":
        array_files(step_dir)[0].unlink()
    elif how == "a file added":
        (step_dir / "state" / "extra").write_bytes(b"\0" * 16)


def test_an_intact_checkpoint_is_read_through_orbax(saved, orbax_reads):
    """The control: the spy sees orbax's reads, and the manifest lets an intact checkpoint through."""
    reader = Checkpointer(str(saved), read_only=True)
    state, meta = reader.restore(STATE, {})
    assert meta["epoch"] == 1 and "restore" in orbax_reads
    for key in STATE:
        np.testing.assert_array_equal(state[key], STATE[key])


@pytest.mark.parametrize("how", ["flipped array bytes", "flipped meta bytes", "a file removed", "a file added"])
def test_a_damaged_checkpoint_is_rejected_before_orbax_reads_it(saved, orbax_reads, how):
    damage(saved / "1", how)
    reader = Checkpointer(str(saved), read_only=True)
    with pytest.raises(ConfigError):
        reader.read_meta()
    with pytest.raises(ConfigError):
        reader.restore(STATE, {})
    assert orbax_reads == []  # the manifest layer said no; orbax never opened the damaged checkpoint


def test_a_checkpoint_without_its_manifest_is_read(saved, orbax_reads):
    """A kill between orbax's commit and the manifest leaves none: the checkpoint is still read (and the state's
    checksum is what guards it then)."""
    os.unlink(saved / "1" / MANIFEST)
    reader = Checkpointer(str(saved), read_only=True)
    assert reader.read_meta()["epoch"] == 1 and orbax_reads == ["restore"]
